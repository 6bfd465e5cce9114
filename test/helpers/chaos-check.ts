// The verdict of `npm run chaos`. Two trackers count every record they are given, per id, with nothing
// collapsed (a record seen twice is counted twice), and report what is missing, doubled or wrong:
//   - ChaosTracker: the outputs of test/fixtures/chaos-topology.ts (every input exactly once, per-key counts
//     exact, every timer set once and fired once unless cancelled, never fired after its cancel, never early);
//   - CommandServiceChaosTracker: the command service (test/fixtures/chaos-command-service.ts): every schedule
//     request (the feed's and the router's out-of-order retries) exactly once and delivered exactly once, never
//     early; every request exactly one outcome, of the kind its class allows, and the traces that outcome
//     implies (a timeout needs the command's late result or its expiry dead letter, so a command the service
//     lost cannot pass as a timeout).
// "Early" is measured by the reader's clock: `visibleAt` is when a read_committed fetch returned the record
// (test/helpers/tail.ts), so a record committed before its due time shows, whatever the worker stamped on it.
// chaosVerdict lists every check the combined report fails; the run passes when the list is empty.
import { decodeEnvelope } from '../../envelope/codec.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import type { ConsumedRecord } from '../../kafka/types.ts'
import { schedulerRequestSerde } from '../../processors/scheduler.ts'
import type { SchedulerRequest } from '../../processors/scheduler.ts'
import { injectedAllowed, isInjectedClass } from './chaos-faults.ts'
import type { InjectedRequestClass } from './chaos-faults.ts'

export interface ChaosReport {
  records: number
  outputs: number
  processed: number
  duplicates: number
  lost: number
  wrongCounts: number
  /** Outputs that are no output of the topology: unreadable, an unknown type, a seq out of range, a timer never set. */
  outputsUnknown: number
  timersSet: number
  /** Timers the topology must have set (every third seq) with no `set` output. */
  timersNotSet: number
  /** `set` and `cancelled` outputs beyond the first of a timer. */
  timerEventsDuplicated: number
  timersCancelled: number
  timersFired: number
  timersDuplicated: number
  timersMissing: number
  timersFiredAfterCancel: number
  /** Fired timers visible to the reader before their due time. */
  timersEarly: number
  /** Fire time minus due time, by the worker's clock. */
  timerLatenessP50Ms: number
  timerLatenessP99Ms: number
  /** Visible to the reader minus due time (with the commit and the read). */
  timerVisibleLatenessP50Ms: number
  timerVisibleLatenessP99Ms: number
}

type Output =
  | { type: 'processed'; seq: number; key: string; count: number }
  | { type: 'set'; timer: string }
  | { type: 'cancelled'; timer: string }
  | { type: 'fired'; timer: string; lateMs: number }

const increment = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1)

export class ChaosTracker {
  readonly records: number
  #outputs = 0
  #processed = 0
  #unknown = 0
  #seen = new Map<number, number>()
  #lastCount = new Map<string, number>()
  #wrongCounts = 0
  #set = new Map<string, number>()
  #cancelled = new Map<string, number>()
  #fired = new Map<string, number>()
  #firedTotal = 0
  #early = 0
  #lateness: number[] = []
  #visibleLateness: number[] = []

  constructor(records: number) {
    this.records = records
  }

  /** One output record; `visibleAt` (the reader's clock when it saw the record) enables the "never early" check. */
  add(record: ConsumedRecord, visibleAt?: number): void {
    this.#outputs++
    const value = parseOutput(record)
    if (value === undefined) {
      this.#unknown++
      return
    }
    if (value.type === 'processed') {
      this.#processed++
      if (!(Number.isInteger(value.seq) && value.seq >= 0 && value.seq < this.records)) this.#unknown++
      increment(this.#seen, value.seq)
      // Per key, the counts a read_committed reader sees must be exactly 1, 2, 3, ... in order.
      const expected = (this.#lastCount.get(value.key) ?? 0) + 1
      if (value.count !== expected) this.#wrongCounts++
      this.#lastCount.set(value.key, value.count)
    } else if (value.type === 'set') {
      if (!this.#mustSet(value.timer)) this.#unknown++
      increment(this.#set, value.timer)
    } else if (value.type === 'cancelled') {
      if (!this.#mustSet(value.timer)) this.#unknown++
      increment(this.#cancelled, value.timer)
    } else {
      if (!this.#mustSet(value.timer)) this.#unknown++
      increment(this.#fired, value.timer)
      this.#firedTotal++
      this.#lateness.push(value.lateMs)
      // The worker stamps the record with its fire time; fire time minus lateness is the due time.
      const due = Number(record.timestamp) - value.lateMs
      if (visibleAt !== undefined) this.#visibleLateness.push(visibleAt - due)
      if (visibleAt !== undefined && visibleAt < due) this.#early++
    }
  }

  /** Every input seen, every timer set, and no timer outstanding. */
  complete(): boolean {
    return this.#seen.size >= this.records && this.timersNotSet() === 0 && this.timersMissing() === 0
  }

  /** Timers set and neither cancelled nor fired. */
  timersMissing(): number {
    let missing = 0
    for (const timer of this.#set.keys()) if (!this.#cancelled.has(timer) && !this.#fired.has(timer)) missing++
    return missing
  }

  timersNotSet(): number {
    let missing = 0
    for (let seq = 0; seq < this.records; seq += 3) if (!this.#set.has(`t-${seq}`)) missing++
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
    for (const [seq, n] of this.#seen) if (!(seq >= 0 && seq < this.records)) duplicates += n
    let timersDuplicated = 0
    let timersFiredAfterCancel = 0
    for (const [timer, n] of this.#fired) {
      if (n > 1) timersDuplicated += n - 1
      if (this.#cancelled.has(timer)) timersFiredAfterCancel++
    }
    let timerEventsDuplicated = 0
    for (const n of [...this.#set.values(), ...this.#cancelled.values()]) timerEventsDuplicated += n - 1
    return {
      records: this.records,
      outputs: this.#outputs,
      processed: this.#processed,
      duplicates,
      lost,
      wrongCounts: this.#wrongCounts,
      outputsUnknown: this.#unknown,
      timersSet: this.#set.size,
      timersNotSet: this.timersNotSet(),
      timerEventsDuplicated,
      timersCancelled: this.#cancelled.size,
      timersFired: this.#firedTotal,
      timersDuplicated,
      timersMissing: this.timersMissing(),
      timersFiredAfterCancel,
      timersEarly: this.#early,
      timerLatenessP50Ms: percentile(this.#lateness, 50),
      timerLatenessP99Ms: percentile(this.#lateness, 99),
      timerVisibleLatenessP50Ms: percentile(this.#visibleLateness, 50),
      timerVisibleLatenessP99Ms: percentile(this.#visibleLateness, 99),
    }
  }

  /** The topology sets `t-<seq>` for every third seq of the run. */
  #mustSet(timer: string): boolean {
    const match = /^t-(\d+)$/.exec(timer)
    const seq = match === null ? -1 : Number(match[1])
    return seq >= 0 && seq < this.records && seq % 3 === 0
  }
}

function parseOutput(record: ConsumedRecord): Output | undefined {
  let value: unknown
  try {
    value = JSON.parse(record.value?.toString('utf8') ?? 'null')
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const v = value as Record<string, unknown>
  if (v.type === 'processed' && typeof v.seq === 'number' && typeof v.key === 'string' && typeof v.count === 'number') return v as Output
  if ((v.type === 'set' || v.type === 'cancelled') && typeof v.timer === 'string') return v as Output
  if (v.type === 'fired' && typeof v.timer === 'string' && typeof v.lateMs === 'number') return v as Output
  return undefined
}

export function checkChaosOutputs(records: number, outputs: readonly ConsumedRecord[]): ChaosReport {
  const tracker = new ChaosTracker(records)
  for (const record of outputs) tracker.add(record)
  return tracker.report()
}

/** What a request must end as: its result ok, an error result (retries exhausted), or either ok or its timeout. */
export type RequestClass = 'succeeds' | 'fails' | 'may-time-out' | InjectedRequestClass

export interface ChaosRequest {
  requestId: string
  /** The command envelope's id (out-of-order retries are scheduled as `retry:<id>:<n>`). */
  commandId: string
  expect: RequestClass
  /** Out-of-order retries the command must cause: schedule requests `retry:<commandId>:1` .. `:<retries>`. */
  retries: number
}

export interface CommandServiceChaosReport {
  /** Ids the run must see scheduled: the feed's envelopes and every retry the requests must cause. */
  envelopesExpected: number
  /** Distinct ids of the schedule requests on the scheduler topic. */
  envelopesScheduled: number
  /** Expected ids with no schedule request (a retry never written, an envelope lost). */
  scheduleRequestsMissing: number
  /** Schedule requests beyond the first of an id (a retry or a feed request committed twice). */
  scheduleRequestsDuplicated: number
  /** Schedule requests for ids nobody expects, and cancel requests (the run sends none). */
  scheduleRequestsUnknown: number
  envelopesDelivered: number
  envelopesDuplicated: number
  /** Deliveries visible to the reader before their deliverAt. */
  envelopesEarly: number
  envelopesMissing: number
  /** Visible to the reader minus deliverAt. */
  envelopeLatenessP50Ms: number
  envelopeLatenessP99Ms: number
  /** Fire time (the delivery's timestamp, by the worker's clock) minus deliverAt. */
  envelopeFireLatenessP50Ms: number
  envelopeFireLatenessP99Ms: number
  retriesExpected: number
  retriesScheduled: number
  requests: number
  outcomes: number
  outcomesOk: number
  outcomesError: number
  outcomesTimeout: number
  requestsWithTwoOutcomes: number
  requestsWithoutOutcome: number
  /** Requests whose outcome, or the late results and dead letters beside it, are not what their class allows. */
  unexpectedOutcomes: number
  /** Of those: timeouts with no trace of the command (no late result, no expiry dead letter): a lost command. */
  timeoutsWithoutTrace: number
  /** The unexpected ones by `<class> -> <statuses> (<late headers>; <dead-letter codes>)`, for diagnosis. */
  unexpectedKinds: Record<string, number>
  /** Outcomes, late results and dead letters for request ids nobody sent, or not envelopes at all. */
  unknownRequestRecords: number
  /** Results that lost to their timeout (kept on the late topic). */
  lateResults: number
  /** Late results beyond the first of a request: a command whose results all lost, run twice. */
  lateResultsDuplicated: number
  /** Late results that lost to another result: a command that produced two results. */
  duplicateResults: number
  deadLetters: number
}

export const SCHEDULED_ID_HEADER = 'weir.scheduled.id'
const EXPIRED = 'WEIR_ERR_COMMAND_EXPIRED'
const EXHAUSTED = 'WEIR_ERR_RETRIES_EXHAUSTED'

interface Outcome {
  status: string
  code: string | undefined
}

export class CommandServiceChaosTracker {
  readonly #requests = new Map<string, ChaosRequest>()
  /** Every id the run must see scheduled, with nothing else. */
  readonly #expectedIds = new Set<string>()
  #retryIds = new Set<string>()
  #scheduled = new Map<string, number[]>()
  #scheduleUnknown = 0
  #deliveries = new Map<string, number[]>()
  #fired = new Map<string, number[]>()
  #outcomes = new Map<string, Outcome[]>()
  #late = new Map<string, string[]>()
  #deadLetters = new Map<string, string[]>()
  #records = { outcomes: 0, late: 0, deadLetters: 0, unreadable: 0 }

  /** `envelopes`: ids of the schedule requests the feed wrote itself. */
  constructor(requests: Iterable<ChaosRequest>, envelopes: Iterable<string>) {
    for (const request of requests) {
      this.#requests.set(request.requestId, request)
      for (let n = 1; n <= request.retries; n++) this.#retryIds.add(`retry:${request.commandId}:${n}`)
    }
    for (const id of envelopes) this.#expectedIds.add(id)
    for (const id of this.#retryIds) this.#expectedIds.add(id)
  }

  /** A record of the scheduler topic. */
  addScheduleRequest(record: ConsumedRecord): void {
    const request = readScheduleRequest(record)
    if (request?.op !== 'schedule' || !this.#expectedIds.has(request.id)) this.#scheduleUnknown++
    if (request?.op !== 'schedule') return
    const times = this.#scheduled.get(request.id) ?? []
    times.push(request.deliverAt)
    this.#scheduled.set(request.id, times)
  }

  /** A record of a topic the scheduler delivers to; records without the scheduled-id header are ignored. */
  addDelivery(record: ConsumedRecord, visibleAt?: number): void {
    const id = record.headers.get(SCHEDULED_ID_HEADER)?.toString()
    if (id === undefined) return
    const times = this.#deliveries.get(id) ?? []
    times.push(visibleAt ?? Number(record.timestamp))
    this.#deliveries.set(id, times)
    push(this.#fired, id, Number(record.timestamp))
  }

  /** A record of the outcomes (results) topic. */
  addOutcome(record: ConsumedRecord): void {
    this.#records.outcomes++
    const outcome = readEnvelope(record) as Envelope<{ code?: unknown } | null> | undefined
    if (outcome === undefined) {
      this.#records.unreadable++
      return
    }
    const code = typeof outcome.payload?.code === 'string' ? outcome.payload.code : undefined
    push(this.#outcomes, outcome.requestId, { status: outcome.status ?? 'none', code })
  }

  /** A record of the late-results topic. */
  addLateResult(record: ConsumedRecord): void {
    this.#records.late++
    const result = readEnvelope(record)
    if (result === undefined) {
      this.#records.unreadable++
      return
    }
    push(this.#late, result.requestId, record.headers.get('weir.late')?.toString() ?? 'none')
  }

  /** A record of the commands' dead-letter topic. */
  addDeadLetter(record: ConsumedRecord): void {
    this.#records.deadLetters++
    const command = readEnvelope(record)
    if (command === undefined) {
      this.#records.unreadable++
      return
    }
    push(this.#deadLetters, command.requestId, record.headers.get('weir.error.code')?.toString() ?? 'none')
  }

  /**
   * Nothing more is expected to arrive: every envelope of the feed scheduled, every scheduled id delivered,
   * every request decided with its traces. (A request's retries are written before its outcome, so a retry
   * still missing once the outcome is visible will never come: it is not waited for.)
   */
  complete(): boolean {
    for (const id of this.#expectedIds) if (!this.#retryIds.has(id) && !this.#scheduled.has(id)) return false
    for (const id of this.#scheduled.keys()) if (!this.#deliveries.has(id)) return false
    for (const request of this.#requests.values()) {
      const outcome = this.#outcomes.get(request.requestId)?.[0]
      if (outcome === undefined) return false
      const late = this.#late.get(request.requestId)?.length ?? 0
      const dead = this.#deadLetters.get(request.requestId)?.length ?? 0
      if (outcome.status === 'timeout' && late + dead === 0) return false
      if ((request.expect === 'fails' || request.expect === 'fails-injected') && dead === 0) return false
    }
    return true
  }

  report(): CommandServiceChaosReport {
    let scheduleMissing = 0
    for (const id of this.#expectedIds) if (!this.#scheduled.has(id)) scheduleMissing++
    let scheduleDuplicated = 0
    for (const times of this.#scheduled.values()) scheduleDuplicated += times.length - 1
    let delivered = 0
    let duplicated = 0
    let early = 0
    let missing = 0
    const lateness: number[] = []
    const fireLateness: number[] = []
    for (const [id, requested] of this.#scheduled) {
      // Scheduling an id again replaces it: the last request's time is the one that counts.
      const deliverAt = requested[requested.length - 1] as number
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
      for (const at of this.#fired.get(id) ?? []) fireLateness.push(at - deliverAt)
    }
    // Deliveries of ids that were never (visibly) scheduled are duplicates of nothing: count them as such.
    for (const [id, times] of this.#deliveries) if (!this.#scheduled.has(id)) duplicated += times.length
    let retriesScheduled = 0
    for (const id of this.#retryIds) if (this.#scheduled.has(id)) retriesScheduled++
    let two = 0
    let without = 0
    let unexpected = 0
    let untraced = 0
    const kinds: Record<string, number> = {}
    const statuses = { ok: 0, error: 0, timeout: 0 }
    for (const request of this.#requests.values()) {
      const outcomes = this.#outcomes.get(request.requestId) ?? []
      if (outcomes.length === 0) without++
      if (outcomes.length > 1) two++
      const late = this.#late.get(request.requestId) ?? []
      const dead = this.#deadLetters.get(request.requestId) ?? []
      if (outcomes.some((outcome) => outcome.status === 'timeout') && late.length + dead.length === 0) untraced++
      if (outcomes.length > 0 && !outcomes.every((outcome) => allowed(request.expect, outcome, late, dead))) {
        unexpected++
        const kind = `${request.expect} -> ${outcomes.map((o) => o.status).join('+')} (${late.join('+')}; ${dead.join('+')})`
        kinds[kind] = (kinds[kind] ?? 0) + 1
      }
    }
    let unknown = this.#records.unreadable
    let lateDuplicated = 0
    let duplicateResults = 0
    for (const [requestId, outcomes] of this.#outcomes) {
      if (!this.#requests.has(requestId)) unknown += outcomes.length
      for (const { status } of outcomes) if (status === 'ok' || status === 'error' || status === 'timeout') statuses[status]++
    }
    for (const [requestId, late] of this.#late) {
      if (!this.#requests.has(requestId)) unknown += late.length
      lateDuplicated += late.length - 1
      for (const header of late) if (header !== 'timeout') duplicateResults++
    }
    for (const [requestId, dead] of this.#deadLetters) if (!this.#requests.has(requestId)) unknown += dead.length
    return {
      envelopesExpected: this.#expectedIds.size,
      envelopesScheduled: this.#scheduled.size,
      scheduleRequestsMissing: scheduleMissing,
      scheduleRequestsDuplicated: scheduleDuplicated,
      scheduleRequestsUnknown: this.#scheduleUnknown,
      envelopesDelivered: delivered,
      envelopesDuplicated: duplicated,
      envelopesEarly: early,
      envelopesMissing: missing,
      envelopeLatenessP50Ms: percentile(lateness, 50),
      envelopeLatenessP99Ms: percentile(lateness, 99),
      envelopeFireLatenessP50Ms: percentile(fireLateness, 50),
      envelopeFireLatenessP99Ms: percentile(fireLateness, 99),
      retriesExpected: this.#retryIds.size,
      retriesScheduled,
      requests: this.#requests.size,
      outcomes: this.#records.outcomes,
      outcomesOk: statuses.ok,
      outcomesError: statuses.error,
      outcomesTimeout: statuses.timeout,
      requestsWithTwoOutcomes: two,
      requestsWithoutOutcome: without,
      unexpectedOutcomes: unexpected,
      timeoutsWithoutTrace: untraced,
      unexpectedKinds: kinds,
      unknownRequestRecords: unknown,
      lateResults: this.#records.late,
      lateResultsDuplicated: lateDuplicated,
      duplicateResults,
      deadLetters: this.#records.deadLetters,
    }
  }
}

/**
 * Whether an outcome, with the late results (their `weir.late` headers) and dead letters (their codes) of its
 * request, is one the request's class allows. A timeout is allowed only for a command that raced its deadline,
 * and only beside exactly one trace of the command: its result, late, or its dead letter for having expired.
 */
function allowed(expect: RequestClass, outcome: Outcome, late: readonly string[], dead: readonly string[]): boolean {
  if (isInjectedClass(expect)) return injectedAllowed(expect, outcome, late, dead)
  if (expect === 'succeeds') return outcome.status === 'ok' && late.length === 0 && dead.length === 0
  if (expect === 'fails') return outcome.status === 'error' && outcome.code === EXHAUSTED && late.length === 0 && dead.length === 1 && dead[0] === EXHAUSTED
  if (outcome.status === 'ok') return late.length === 0 && dead.length === 0
  if (outcome.status !== 'timeout') return false
  return (late.length === 1 && dead.length === 0 && late[0] === 'timeout') || (late.length === 0 && dead.length === 1 && dead[0] === EXPIRED)
}

export interface CommandServiceChaosTopics {
  commands: string
  scheduler: string
  outcomes: string
  lateResults: string
  deadLetters: string
  /** Topics the scheduler delivers the feed's envelopes to (the commands topic, for retries, is read anyway). */
  deliveries: readonly string[]
}

/** Every topic the command-service tracker reads. */
export function commandServiceChaosTopicList(topics: CommandServiceChaosTopics): string[] {
  return [topics.scheduler, topics.commands, ...topics.deliveries, topics.outcomes, topics.lateResults, topics.deadLetters]
}

/** Feeds one record of one of the service's topics to the tracker, by topic. */
export function addCommandServiceRecord(tracker: CommandServiceChaosTracker, topics: CommandServiceChaosTopics, record: ConsumedRecord, visibleAt?: number): void {
  if (record.topic === topics.scheduler) tracker.addScheduleRequest(record)
  else if (record.topic === topics.outcomes) tracker.addOutcome(record)
  else if (record.topic === topics.lateResults) tracker.addLateResult(record)
  else if (record.topic === topics.deadLetters) tracker.addDeadLetter(record)
  else tracker.addDelivery(record, visibleAt)
}

/** Facts of the run itself. */
export interface ChaosRunFacts {
  kills: number
  killsRequested: number
  restarts: number
  /** Workers found exited on their own when their turn to be killed came (restarted; no kill). */
  unplannedExits: number
  workers: number
  commandServiceWorkers: number
  partitions: number
  seconds: number
  /** Brokers of the cluster the run used (1: a single broker, no broker kills). */
  brokers: number
  brokerKillsRequested: number
  /** Brokers SIGKILLed (and restarted): each node of a rolling restart counts once. */
  brokerKills: number
  /** Per broker kill, what was killed (e.g. `source-leader:2`, `transaction-coordinator:1`, `rolling:3`). */
  brokerKillTargets: string[]
  /**
   * Per broker kill, seconds from the kill until every task had committed again (a record of every partition
   * of the outputs and the outcomes became visible to the read_committed reader); null when that did not happen.
   */
  brokerRecoverySeconds: Array<number | null>
}

/** Longest time every task may take to commit again after a broker kill, s. */
export const BROKER_RECOVERY_LIMIT_SECONDS = 30

export type ChaosRunReport = ChaosReport & CommandServiceChaosReport & ChaosRunFacts & { /** timersEarly + envelopesEarly */ deliveredEarly: number }

export function chaosRunReport(topology: ChaosReport, service: CommandServiceChaosReport, facts: ChaosRunFacts): ChaosRunReport {
  return { ...topology, ...service, ...facts, deliveredEarly: topology.timersEarly + service.envelopesEarly }
}

/** Every check of the run, by the field it reads: each must hold. */
const checks: ReadonlyArray<readonly [string, (r: ChaosRunReport) => boolean]> = [
  ['kills', (r) => r.kills > 0 && r.kills === r.killsRequested],
  ['brokerKills', (r) => r.brokerKills >= r.brokerKillsRequested && r.brokerKillTargets.length === r.brokerKills],
  ['brokerRecoverySeconds', (r) => r.brokerRecoverySeconds.length === r.brokerKills && r.brokerRecoverySeconds.every((s) => s !== null && s <= BROKER_RECOVERY_LIMIT_SECONDS)],
  ['records', (r) => r.records > 0],
  ['lost', (r) => r.lost === 0],
  ['duplicates', (r) => r.duplicates === 0],
  ['wrongCounts', (r) => r.wrongCounts === 0],
  ['outputsUnknown', (r) => r.outputsUnknown === 0],
  ['timersSet', (r) => r.timersSet > 0],
  ['timersNotSet', (r) => r.timersNotSet === 0],
  ['timerEventsDuplicated', (r) => r.timerEventsDuplicated === 0],
  ['timersDuplicated', (r) => r.timersDuplicated === 0],
  ['timersMissing', (r) => r.timersMissing === 0],
  ['timersFiredAfterCancel', (r) => r.timersFiredAfterCancel === 0],
  ['deliveredEarly', (r) => r.deliveredEarly === 0],
  ['envelopesExpected', (r) => r.envelopesExpected > 0],
  ['scheduleRequestsMissing', (r) => r.scheduleRequestsMissing === 0],
  ['scheduleRequestsDuplicated', (r) => r.scheduleRequestsDuplicated === 0],
  ['scheduleRequestsUnknown', (r) => r.scheduleRequestsUnknown === 0],
  ['envelopesMissing', (r) => r.envelopesMissing === 0],
  ['envelopesDuplicated', (r) => r.envelopesDuplicated === 0],
  ['requests', (r) => r.requests > 0],
  ['requestsWithTwoOutcomes', (r) => r.requestsWithTwoOutcomes === 0],
  ['requestsWithoutOutcome', (r) => r.requestsWithoutOutcome === 0],
  ['unexpectedOutcomes', (r) => r.unexpectedOutcomes === 0],
  ['timeoutsWithoutTrace', (r) => r.timeoutsWithoutTrace === 0],
  ['unknownRequestRecords', (r) => r.unknownRequestRecords === 0],
  ['lateResultsDuplicated', (r) => r.lateResultsDuplicated === 0],
  ['duplicateResults', (r) => r.duplicateResults === 0],
]

/** The checks the report fails, each as `field: value`; empty when the run passed. */
export function chaosVerdict(report: ChaosRunReport): string[] {
  return checks.filter(([, holds]) => !holds(report)).map(([field]) => `${field}: ${String(report[field as keyof ChaosRunReport])}`)
}

function readEnvelope(record: ConsumedRecord): Envelope | undefined {
  try {
    return decodeEnvelope(record.value as Buffer)
  } catch {
    return undefined
  }
}

function readScheduleRequest(record: ConsumedRecord): SchedulerRequest | undefined {
  try {
    return schedulerRequestSerde.deserialize(record.value ?? undefined)
  } catch {
    return undefined
  }
}

function push<V>(map: Map<string, V[]>, key: string, value: V): void {
  const list = map.get(key) ?? []
  list.push(value)
  map.set(key, list)
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}
