// What a task hands over at commit time, and what it counts of its work.
import type { OutgoingRecord } from '../../kafka/types.ts'
import type { BatchOperation } from '../../state/kv-store.ts'

/** What the task did, counted when the commit that carried it succeeded (never what a failed commit dropped). */
export interface TaskCounters {
  processed: number
  deadLettered: number
  skipped: number
  timersFired: number
  outputs: number
}

export interface CommitPlan {
  outputs: OutgoingRecord[]
  /** Final operation per key of every store since the last commit. */
  storeWrites: Map<string, BatchOperation[]>
  /** Next offset per source topic of this task's partition. */
  positions: Map<string, bigint>
}

export const zeroCounters = (): TaskCounters => ({ processed: 0, deadLettered: 0, skipped: 0, timersFired: 0, outputs: 0 })

export function addCounters(to: TaskCounters, from: TaskCounters): void {
  to.processed += from.processed
  to.deadLettered += from.deadLettered
  to.skipped += from.skipped
  to.timersFired += from.timersFired
  to.outputs += from.outputs
}
