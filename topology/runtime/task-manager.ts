// Which tasks this worker runs, like Kafka Streams' TaskManager: an assignment opens the tasks it adds (fencing the
// previous owner, restoring their stores, reading their committed offsets) and closes those it drops; the local
// state of a partition that went elsewhere is removed after a delay, unless the partition comes back first.
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'

import { channels, publish } from '../../core/diagnostics.ts'
import { committedOffsets, createProducer } from '../../kafka/index.ts'
import type { PartitionReader, TopicPartition } from '../../kafka/index.ts'
import type { ByteStore } from '../../state/kv-store.ts'
import type { LiveTask, RuntimeContext } from './runtime-context.ts'
import { readCheckpoints, restoreStores, writeCheckpoints } from './state-restore.ts'
import { Task } from './task.ts'
import type { TaskCounters } from './task-counters.ts'
import type { Trouble, Troubles } from './task-troubles.ts'

/** A task's transaction timeout unless the application sets one (StreamRuntimeOptions.transactionTimeoutMs). */
const DEFAULT_TRANSACTION_TIMEOUT_MS = 30_000

export interface TaskManager {
  /** Counters of tasks that were closed, so metrics stay monotonic across rebalances. */
  readonly retired: TaskCounters
  /** Opens the tasks of the assignment that are not open (nor backing off, nor stopped); closes the others. */
  reconcile(assignment: TopicPartition[]): Promise<void>
  closeTask(partition: number, keepState: boolean): Promise<void>
}

export function createTaskManager(ctx: RuntimeContext, trouble: Troubles, maxRecordBytes: (topic: string) => number): TaskManager {
  const { applicationId, topology, options, client, tasks, now, commitIntervalMs, errorPolicy, deadLetterTopic } = ctx
  const troubles = trouble.byPartition
  const cleanupDelay = options.stateCleanupDelayMs ?? 10 * 60_000
  const cleanups = new Map<number, NodeJS.Timeout>()
  /** State folders being removed right now: a re-assigned partition waits for its removal to finish. */
  const removals = new Map<number, Promise<void>>()
  const retired: TaskCounters = { processed: 0, outputs: 0, deadLettered: 0, skipped: 0, timersFired: 0 }

  async function openTask(partition: number): Promise<LiveTask> {
    const cleanup = cleanups.get(partition)
    if (cleanup !== undefined) {
      clearTimeout(cleanup)
      cleanups.delete(partition)
    }
    // A removal that started before this assignment finishes first, so the checkpoint read below and the
    // stores opened below are never half-deleted (they are then restored from the changelog from scratch).
    await removals.get(partition)
    const started = performance.now()
    const taskId = `${applicationId}-${partition}`
    // Fence the previous owner first: its open transaction is aborted before we read offsets and changelogs.
    const producer = createProducer({ ...client, transactionalId: taskId, clientId: `${taskId}-producer`, transactionTimeoutMs: options.transactionTimeoutMs ?? DEFAULT_TRANSACTION_TIMEOUT_MS })
    const stores = new Map<string, ByteStore>()
    try {
      const transaction = await producer.beginTransaction()
      const dir = join(options.stateDir, applicationId, String(partition))
      await mkdir(dir, { recursive: true })
      const live: LiveTask = {
        task: undefined as unknown as Task,
        producer,
        transaction,
        stores,
        dir,
        checkpoints: await readCheckpoints(dir),
        committing: undefined,
        failure: undefined,
        sincePlan: { records: 0, last: undefined },
        nextCommit: now() + commitIntervalMs,
      }
      for (const [name, spec] of Object.entries(topology.stores)) {
        stores.set(name, await options.openStore({ name, backend: spec.backend, path: join(dir, name) }))
      }
      const restoredRecords = await restoreStores(ctx, live, taskId, partition)
      await writeCheckpoints(live)
      const sources = topology.sourceTopics.map((topic) => ({ topic, partition }))
      const positions = new Map<string, bigint>()
      for (const c of await committedOffsets(client, applicationId, sources)) positions.set(c.topic, c.offset)
      const missing = sources.filter((s) => !positions.has(s.topic))
      for (const o of await (ctx.reader as PartitionReader).offsets(missing, 'earliest')) positions.set(o.topic, o.offset)
      live.task = new Task({
        applicationId,
        partition,
        topology,
        stores,
        now,
        errorPolicy,
        deadLetterTopic,
        positions,
        maxRecordBytes,
        ...(troubles.get(partition)?.poisoned.length ? { poisoned: [...(troubles.get(partition) as Trouble).poisoned] } : {}),
        ...(options.maxTimersPerRound === undefined ? {} : { maxTimersPerRound: options.maxTimersPerRound }),
        ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
      })
      await live.task.init()
      publish(channels.task, { applicationId, taskId, partition, event: 'restored', restoredRecords, durationMs: performance.now() - started })
      return live
    } catch (error) {
      for (const store of stores.values()) await store.close().catch(() => {})
      await producer.close().catch(() => {})
      publish(channels.task, { applicationId, taskId, partition, event: 'failed', error })
      throw error
    }
  }

  async function closeTask(partition: number, keepState: boolean): Promise<void> {
    const live = tasks.get(partition)
    if (live === undefined) return
    tasks.delete(partition)
    // Records in flight finish first (their handlers may be awaiting I/O); a closed task's uncommitted work is dropped.
    await live.task.concurrent?.drained()
    await live.committing
    retire(live.task)
    await live.task.close()
    await live.transaction?.abort().catch(() => {})
    await live.producer.close().catch(() => {})
    for (const store of live.stores.values()) await store.close().catch(() => {})
    publish(channels.task, { applicationId, taskId: live.task.id, partition, event: 'revoked' })
    if (!keepState) {
      const timer = setTimeout(() => {
        cleanups.delete(partition)
        if (tasks.has(partition)) return
        const removal = rm(live.dir, { recursive: true, force: true })
          .catch(() => {})
          .finally(() => removals.delete(partition))
        removals.set(partition, removal)
      }, cleanupDelay)
      timer.unref()
      cleanups.set(partition, timer)
    }
  }

  function retire(task: Task): void {
    retired.processed += task.counters.processed
    retired.outputs += task.counters.outputs
    retired.deadLettered += task.counters.deadLettered
    retired.skipped += task.counters.skipped
    retired.timersFired += task.counters.timersFired
  }

  async function reconcile(assignment: TopicPartition[]): Promise<void> {
    const wanted = new Set(assignment.map((p) => p.partition))
    for (const partition of [...tasks.keys()]) if (!wanted.has(partition)) await closeTask(partition, false)
    // A partition that went elsewhere takes its failures along: its new owner (or we, later) start afresh.
    for (const partition of [...troubles.keys()]) if (!wanted.has(partition)) troubles.delete(partition)
    for (const partition of [...wanted].sort((a, b) => a - b)) {
      if (tasks.has(partition) || ctx.stopRequested) continue
      const trouble = troubles.get(partition)
      // Stopped, or backing off after a failure: opened again when the backoff is over (the loop sees to it).
      if (trouble !== undefined && (trouble.stopped !== undefined || trouble.retryAt > now())) continue
      publish(channels.task, { applicationId, taskId: `${applicationId}-${partition}`, partition, event: 'assigned' })
      tasks.set(partition, await openTask(partition))
    }
  }

  return { retired, reconcile, closeTask }
}
