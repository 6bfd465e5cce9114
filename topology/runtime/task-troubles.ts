// The failure bookkeeping of tasks whose commit failed, kept across their re-opening: the backoff before a task is
// opened again, refusals counted towards maxTaskFailures, records isolated one per transaction to name the one to
// blame, the poisoned records the error policy is applied to, and tasks stopped.
import { channels, publish } from '../../core/diagnostics.ts'
import { WeirError, isWeirError } from '../../core/errors.ts'
import type { CommitAttempt, RuntimeContext } from './runtime-context.ts'
import { failureBackoff } from './runtime-options.ts'

/**
 * A partition whose task failed, kept across its re-opening: the failures in a row at the same input offsets,
 * when to try again, and records the error policy is applied to instead of processing them.
 */
export interface Trouble {
  /** The offsets it failed at (the task's committed positions), as a key. */
  from: string
  offsets: Record<string, string>
  failures: number
  /** Failures the broker refused (not retriable): these count towards maxTaskFailures. */
  refusals: number
  error: unknown
  retryAt: number
  /**
   * After a refusal the task commits one input record per transaction until it committed `until` (the end of
   * the refused transaction), so a refusal that repeats names its record. Other failures need no isolation.
   */
  isolate: boolean
  until: Map<string, bigint>
  poisoned: Array<{ topic: string; offset: bigint; error: WeirError; attempts: number }>
  stopped: WeirError | undefined
  record: { topic: string; offset: bigint } | undefined
}

export interface Troubles {
  /** By partition. */
  readonly byPartition: Map<number, Trouble>
  failed(partition: number, error: unknown, offsets: Record<string, string>, attempt: CommitAttempt): void
  recovered(partition: number, positions: ReadonlyMap<string, bigint>): void
  backingOff(): Trouble[]
}

export function createTroubles(ctx: RuntimeContext): Troubles {
  const { applicationId, errorPolicy, now } = ctx
  const { min: backoffMin, max: backoffMax } = failureBackoff(ctx.options)
  const maxTaskFailures = ctx.options.maxTaskFailures ?? 5
  const troubles = new Map<number, Trouble>()

  // A task failed: count it against the offsets it resumes from, and back off before it is opened again
  // (doubling per failure in a row, bounded). Failures the broker refused (not retriable: it would refuse the
  // same records again) count towards maxTaskFailures; then the error policy is applied to the record the
  // failing transaction carried (re-opened tasks commit one record per transaction, so it is known), and if that
  // does not help either, or the policy is fail, or no single record is to blame, the task is stopped.
  // Failures that are not refusals (the broker away, timeouts) only back off: nothing is wrong with the records.
  function failed(partition: number, error: unknown, offsets: Record<string, string>, attempt: CommitAttempt): void {
    const from = JSON.stringify(offsets)
    const previous = troubles.get(partition)
    const until = new Map(attempt.positions)
    for (const [topic, offset] of previous?.until ?? []) if (offset > (until.get(topic) ?? -1n)) until.set(topic, offset)
    const trouble: Trouble =
      previous !== undefined && previous.from === from
        ? previous
        : { from, offsets, failures: 0, refusals: 0, error, retryAt: 0, isolate: previous?.isolate ?? false, until, poisoned: previous?.poisoned ?? [], stopped: undefined, record: undefined }
    trouble.until = until
    trouble.failures++
    trouble.error = error
    trouble.record = attempt.records === 1 ? attempt.last : undefined
    if (refusedByBroker(error)) {
      trouble.refusals++
      trouble.isolate = true
    }
    trouble.retryAt = now() + Math.min(backoffMax, backoffMin * 2 ** (trouble.failures - 1))
    troubles.set(partition, trouble)
    // A transaction of several records was not isolated yet: the re-opened task's next ones are, one record each.
    if (trouble.refusals < maxTaskFailures || attempt.records > 1) return
    const record = trouble.record
    const message = error instanceof Error ? error.message : String(error)
    const where = record === undefined ? `at offsets ${from}` : `at ${record.topic}[${partition}]@${record.offset}`
    if (record !== undefined && errorPolicy !== 'fail' && !trouble.poisoned.some((p) => p.topic === record.topic && p.offset === record.offset)) {
      trouble.poisoned.push({
        ...record,
        attempts: trouble.refusals,
        error: new WeirError('WEIR_ERR_POISON_RECORD', `task ${applicationId}-${partition} failed ${trouble.refusals} times in a row ${where}: ${message}`, {
          cause: error,
          details: { partition, failures: trouble.refusals },
        }),
      })
      trouble.refusals = 0
      trouble.retryAt = now()
      return
    }
    trouble.stopped = new WeirError(
      'WEIR_ERR_TASK_STOPPED',
      `task ${applicationId}-${partition} stopped after ${trouble.refusals} failures in a row ${where} (error policy ${errorPolicy}): ${message}`,
      { cause: error, details: { partition, failures: trouble.refusals, offsets } },
    )
    publish(channels.task, { applicationId, taskId: `${applicationId}-${partition}`, partition, event: 'failed', error: trouble.stopped })
  }

  // A commit succeeded: the failures in a row are over; once it is past where the task failed, so is isolation.
  function recovered(partition: number, positions: ReadonlyMap<string, bigint>): void {
    const trouble = troubles.get(partition)
    if (trouble === undefined || trouble.stopped !== undefined) return
    trouble.failures = 0
    trouble.refusals = 0
    if (!trouble.isolate || [...trouble.until].every(([topic, offset]) => (positions.get(topic) ?? -1n) >= offset)) troubles.delete(partition)
  }

  /** Partitions of this worker that wait for their backoff to end before they are opened again. */
  function backingOff(): Trouble[] {
    if (troubles.size === 0) return []
    const assigned = new Set((ctx.member?.assignments() ?? []).map((p) => p.partition))
    return [...troubles].filter(([partition, t]) => t.stopped === undefined && !ctx.tasks.has(partition) && assigned.has(partition)).map(([, t]) => t)
  }

  return { byPartition: troubles, failed, recovered, backingOff }
}

/** The broker refused the records (a non-retriable protocol error, such as MESSAGE_TOO_LARGE): trying again will not help. */
function refusedByBroker(error: unknown): boolean {
  const broker = isWeirError(error) ? (error.details.brokerErrors as Array<{ retriable: boolean }> | undefined) : undefined
  return broker !== undefined && broker.some((b) => !b.retriable)
}
