// Checks the outputs of test/fixtures/chaos-topology.ts: every input exactly once, per-key counts exact,
// every timer fired once unless cancelled. Incremental, so a reader can stop as soon as all is there.
// Below it, the same for the command service (test/fixtures/chaos-command-service.ts).
import { decodeEnvelope } from '../../envelope/codec.ts'
import type { ConsumedRecord } from '../../kafka/types.ts'
import { schedulerRequestSerde } from '../../processors/scheduler.ts'
import { readAll } from './kafka.ts'

export interface ChaosReport {
  records: number
  outputs: number
  processed: number
  duplicates: number
  lost: number
  wrongCounts: number
  timersSet: number
  timersCancelled: number
  timersFired: number
  timersDuplicated: number
  timersMissing: number
  timersFiredAfterCancel: number
  timerLatenessP50Ms: number
  timerLatenessP99Ms: number
}

type Output =
  | { type: 'processed'; seq: number; key: string; count: number }
  | { type: 'set'; timer: string }
  | { type: 'cancelled'; timer: string }
  | { type: 'fired'; timer: string; lateMs: number }

export class ChaosTracker {
  readonly records: number
  #outputs = 0
  #processed = 0
  #seen = new Map<number, number>()
  #lastCount = new Map<string, number>()
  #wrongCounts = 0
  #set = new Set<string>()
  #cancelled = new Set<string>()
  #fired = new Map<string, number>()
  #firedTotal = 0
  #lateness: number[] = []

  constructor(records: number) {
    this.records = records
  }

  add(record: ConsumedRecord): void {
    this.#outputs++
    const value = JSON.parse(record.value?.toString('utf8') ?? 'null') as Output
    if (value.type === 'processed') {
      this.#processed++
      this.#seen.set(value.seq, (this.#seen.get(value.seq) ?? 0) + 1)
      // Per key, the counts a read_committed reader sees must be exactly 1, 2, 3, ... in order.
      const expected = (this.#lastCount.get(value.key) ?? 0) + 1
      if (value.count !== expected) this.#wrongCounts++
      this.#lastCount.set(value.key, value.count)
    } else if (value.type === 'set') this.#set.add(value.timer)
    else if (value.type === 'cancelled') this.#cancelled.add(value.timer)
    else if (value.type === 'fired') {
      this.#fired.set(value.timer, (this.#fired.get(value.timer) ?? 0) + 1)
      this.#firedTotal++
      this.#lateness.push(value.lateMs)
    }
  }

  /** Every input seen and no timer outstanding. */
  complete(): boolean {
    return this.#seen.size >= this.records && this.#set.size - this.#cancelled.size - this.#fired.size <= 0 && this.timersMissing() === 0
  }

  timersMissing(): number {
    let missing = 0
    for (const timer of this.#set) if (!this.#cancelled.has(timer) && !this.#fired.has(timer)) missing++
    return missing
  }

  report(): ChaosReport {
    let duplicates = 0
    let lost = 0
    for (let seq = 0; seq < this.records; seq++) {
      const n = this.#seen.get(seq) ?? 0
      if (n === 0) lost++
      if (n > 1) duplicates += n - 1
    }
    let timersDuplicated = 0
    let timersFiredAfterCancel = 0
    for (const [timer, n] of this.#fired) {
      if (n > 1) timersDuplicated += n - 1
      if (this.#cancelled.has(timer)) timersFiredAfterCancel++
    }
    const lateness = [...this.#lateness].sort((a, b) => a - b)
    const pct = (p: number) => (lateness.length === 0 ? 0 : (lateness[Math.min(lateness.length - 1, Math.floor((p / 100) * lateness.length))] as number))
    return {
      records: this.records,
      outputs: this.#outputs,
      processed: this.#processed,
      duplicates,
      lost,
      wrongCounts: this.#wrongCounts,
      timersSet: this.#set.size,
      timersCancelled: this.#cancelled.size,
      timersFired: this.#firedTotal,
      timersDuplicated,
      timersMissing: this.timersMissing(),
      timersFiredAfterCancel,
      timerLatenessP50Ms: pct(50),
      timerLatenessP99Ms: pct(99),
    }
  }
}

export function checkChaosOutputs(records: number, outputs: readonly ConsumedRecord[]): ChaosReport {
  const tracker = new ChaosTracker(records)
  for (const record of outputs) tracker.add(record)
  return tracker.report()
}

// Checks the command service under chaos (test/fixtures/chaos-command-service.ts): every envelope scheduled
// through the scheduler topic (by the chaos feed, or by the router for an out-of-order retry) delivered exactly
// once and never before it was due; every request exactly one outcome on the outcomes topic.

export interface CommandServiceChaosReport {
  /** Distinct ids of the schedule requests on the scheduler topic (the feed's and the router's retries). */
  envelopesScheduled: number
  envelopesDelivered: number
  envelopesDuplicated: number
  /** Deliveries whose record timestamp (the worker's fire time) is before the requested deliverAt. */
  envelopesEarly: number
  envelopesMissing: number
  envelopeLatenessP50Ms: number
  envelopeLatenessP99Ms: number
  retriesScheduled: number
  requests: number
  outcomes: number
  outcomesOk: number
  outcomesError: number
  outcomesTimeout: number
  requestsWithTwoOutcomes: number
  requestsWithoutOutcome: number
  /** Outcomes for request ids nobody sent. */
  outcomesUnexpected: number
  /** Results that lost to their timeout (kept on the late topic). */
  lateResults: number
  /** Late results that lost to another result: a command that produced two results. */
  duplicateResults: number
}

export const SCHEDULED_ID_HEADER = 'weir.scheduled.id'

export class CommandServiceChaosTracker {
  readonly #requests: ReadonlySet<string>
  #scheduled = new Map<string, number>()
  #retries = new Set<string>()
  #deliveries = new Map<string, number[]>()
  #outcomes = new Map<string, string[]>()
  #outcomeRecords = 0
  #late = 0
  #duplicateResults = 0

  constructor(requests: Iterable<string>) {
    this.#requests = new Set(requests)
  }

  /** A record of the scheduler topic. */
  addScheduleRequest(record: ConsumedRecord): void {
    const request = schedulerRequestSerde.deserialize(record.value ?? undefined)
    if (request.op !== 'schedule') return
    this.#scheduled.set(request.id, request.deliverAt)
    if (request.id.startsWith('retry:')) this.#retries.add(request.id)
  }

  /** A record of a topic the scheduler delivers to; records without the scheduled-id header are ignored. */
  addDelivery(record: ConsumedRecord): void {
    const id = record.headers.get(SCHEDULED_ID_HEADER)?.toString()
    if (id === undefined) return
    const times = this.#deliveries.get(id) ?? []
    times.push(Number(record.timestamp))
    this.#deliveries.set(id, times)
  }

  /** A record of the outcomes (results) topic. */
  addOutcome(record: ConsumedRecord): void {
    const outcome = decodeEnvelope(record.value as Buffer)
    this.#outcomeRecords++
    const statuses = this.#outcomes.get(outcome.requestId) ?? []
    statuses.push(outcome.status ?? 'none')
    this.#outcomes.set(outcome.requestId, statuses)
  }

  /** A record of the late-results topic. */
  addLateResult(record: ConsumedRecord): void {
    this.#late++
    if (record.headers.get('weir.late')?.toString() !== 'timeout') this.#duplicateResults++
  }

  complete(): boolean {
    for (const id of this.#scheduled.keys()) if (!this.#deliveries.has(id)) return false
    for (const requestId of this.#requests) if (!this.#outcomes.has(requestId)) return false
    return true
  }

  report(): CommandServiceChaosReport {
    let delivered = 0
    let duplicated = 0
    let early = 0
    let missing = 0
    const lateness: number[] = []
    for (const [id, deliverAt] of this.#scheduled) {
      const times = this.#deliveries.get(id)
      if (times === undefined) {
        missing++
        continue
      }
      delivered++
      duplicated += times.length - 1
      for (const at of times) {
        if (at < deliverAt) early++
        lateness.push(at - deliverAt)
      }
    }
    // Deliveries of ids that were never (visibly) scheduled are duplicates of nothing: count them as such.
    for (const [id, times] of this.#deliveries) if (!this.#scheduled.has(id)) duplicated += times.length
    let two = 0
    let without = 0
    let unexpected = 0
    const statuses = { ok: 0, error: 0, timeout: 0 }
    for (const requestId of this.#requests) {
      const outcomes = this.#outcomes.get(requestId)
      if (outcomes === undefined) without++
      else if (outcomes.length > 1) two++
    }
    for (const [requestId, outcomes] of this.#outcomes) {
      if (!this.#requests.has(requestId)) unexpected++
      for (const status of outcomes) if (status === 'ok' || status === 'error' || status === 'timeout') statuses[status]++
    }
    return {
      envelopesScheduled: this.#scheduled.size,
      envelopesDelivered: delivered,
      envelopesDuplicated: duplicated,
      envelopesEarly: early,
      envelopesMissing: missing,
      envelopeLatenessP50Ms: percentile(lateness, 50),
      envelopeLatenessP99Ms: percentile(lateness, 99),
      retriesScheduled: this.#retries.size,
      requests: this.#requests.size,
      outcomes: this.#outcomeRecords,
      outcomesOk: statuses.ok,
      outcomesError: statuses.error,
      outcomesTimeout: statuses.timeout,
      requestsWithTwoOutcomes: two,
      requestsWithoutOutcome: without,
      outcomesUnexpected: unexpected,
      lateResults: this.#late,
      duplicateResults: this.#duplicateResults,
    }
  }
}

/** The report's verdict: the command service kept every promise the chaos run checks. */
export function commandServiceChaosPassed(report: CommandServiceChaosReport): boolean {
  return (
    report.envelopesScheduled > 0 &&
    report.envelopesDelivered === report.envelopesScheduled &&
    report.envelopesDuplicated === 0 &&
    report.envelopesEarly === 0 &&
    report.requests > 0 &&
    report.outcomes === report.requests &&
    report.requestsWithTwoOutcomes === 0 &&
    report.requestsWithoutOutcome === 0 &&
    report.outcomesUnexpected === 0 &&
    report.duplicateResults === 0
  )
}

export interface CommandServiceChaosTopics {
  commands: string
  scheduler: string
  outcomes: string
  lateResults: string
  /** Topics the scheduler delivers the feed's envelopes to (the commands topic, for retries, is read anyway). */
  deliveries: readonly string[]
}

/** Reads every committed record of the service's topics, up to their end offsets now, into a tracker. */
export async function readCommandServiceChaos(topics: CommandServiceChaosTopics, requests: Iterable<string>): Promise<CommandServiceChaosTracker> {
  const tracker = new CommandServiceChaosTracker(requests)
  for (const record of await readAll(topics.scheduler)) tracker.addScheduleRequest(record)
  for (const topic of [topics.commands, ...topics.deliveries]) for (const record of await readAll(topic)) tracker.addDelivery(record)
  for (const record of await readAll(topics.outcomes)) tracker.addOutcome(record)
  for (const record of await readAll(topics.lateResults)) tracker.addLateResult(record)
  return tracker
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}
