// Checks the outputs of test/fixtures/chaos-topology.ts: every input exactly once, per-key counts exact,
// every timer fired once unless cancelled. Incremental, so a reader can stop as soon as all is there.
import type { ConsumedRecord } from '../../kafka/types.ts'

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
