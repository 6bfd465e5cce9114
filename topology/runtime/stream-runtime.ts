// Runs a topology on Kafka: one task per input partition, exactly-once per task. This file composes the parts:
// options (runtime-options.ts), topic setup, the task manager with restore and checkpoints, the committer with
// the failure bookkeeping, the record queues and the loop (stream-loop.ts), which share a runtime context.
//
// Every commit interval each task with work commits one Kafka transaction holding its outputs, its store
// writes (changelog records) and its input offsets; only then are the store writes applied to the local store.
// A commit runs beside the loop: the task hands over what it has (its write buffers seal that layer) and goes
// on processing into the next one while the transaction is in flight; one commit per task at a time.
// Each task has its own transactional producer (id `<applicationId>-<partition>`): the next owner of a
// partition fences the previous one and aborts its open transaction before reading offsets and changelogs.
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'

import { channels, publish } from '../../core/diagnostics.ts'
import { isWeirError } from '../../core/errors.ts'
import { createGroupMember, createPartitionReader } from '../../kafka/index.ts'
import { createCommitter } from './committer.ts'
import { RecordQueues } from './record-queues.ts'
import { createRuntimeContext } from './runtime-context.ts'
import type { LiveTask } from './runtime-context.ts'
import { validateRuntimeOptions } from './runtime-options.ts'
import type { RuntimeState, StreamRuntime, StreamRuntimeOptions, TaskFailure, UncommittedTask } from './runtime-options.ts'
import { createStreamLoop } from './stream-loop.ts'
import { createTaskManager } from './task-manager.ts'
import { createTroubles } from './task-troubles.ts'
import { createRecordLimits, prepareTopics } from './topic-setup.ts'

export function createStreamRuntime(options: StreamRuntimeOptions): StreamRuntime {
  validateRuntimeOptions(options)
  const ctx = createRuntimeContext(options)
  const { applicationId, topology, client, tasks, totals, now, idleWaitMs } = ctx
  const limits = createRecordLimits(ctx)
  const troubles = createTroubles(ctx)
  const taskManager = createTaskManager(ctx, troubles, (topic) => limits.maxRecordBytes(topic))
  const committer = createCommitter(ctx, troubles, taskManager)
  const queues = new RecordQueues()
  const runLoop = createStreamLoop(ctx, { queues, troubles, taskManager, committer })
  let state: RuntimeState = 'created'

  let resolveDone!: () => void
  let rejectDone!: (error: unknown) => void
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve
    rejectDone = reject
  })
  done.catch(() => {})
  let resolveStarted!: () => void
  let rejectStarted!: (error: unknown) => void
  const started = new Promise<void>((resolve, reject) => {
    resolveStarted = resolve
    rejectStarted = reject
  })
  started.catch(() => {})

  async function shutdown(): Promise<void> {
    queues.clear()
    await committer.commitsSettled()
    committer.startCommits(() => true)
    await committer.commitsSettled()
    for (const live of tasks.values()) if (live.failure !== undefined) droppedAtStop.push(describeUncommitted(live))
    await ctx.member?.leave()
    for (const partition of [...tasks.keys()]) await taskManager.closeTask(partition, true)
    await ctx.reader?.close()
    await ctx.restoreReader?.close()
    await ctx.member?.close()
    await limits.close()
  }

  async function run(): Promise<void> {
    state = 'starting'
    try {
      await mkdir(options.stateDir, { recursive: true })
      await prepareTopics(ctx, limits)
      ctx.reader = createPartitionReader({ ...client, isolation: 'read_committed', maxWaitMs: idleWaitMs })
      ctx.restoreReader = createPartitionReader({ ...client, isolation: 'read_committed', maxWaitMs: 50 })
      const member = createGroupMember({
        ...client,
        groupId: applicationId,
        topics: topology.sourceTopics,
        ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
        ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
        ...(options.groupInstanceId === undefined ? {} : { groupInstanceId: options.groupInstanceId }),
        // State folders on disk (this run's and earlier ones'): the assignor moves partitions to where their state is.
        localPartitions: async () =>
          (await readdir(join(options.stateDir, applicationId)).catch(() => [])).filter((name) => /^\d+$/.test(name)).map(Number),
      })
      ctx.member = member
      member.onAssignment((partitions) => {
        ctx.pendingAssignment = partitions
      })
      const first = await member.join()
      ctx.pendingAssignment = undefined
      await taskManager.reconcile(first)
      state = 'running'
      resolveStarted()
      await runLoop()
      state = 'stopping'
      await shutdown()
      state = 'stopped'
      resolveDone()
    } catch (error) {
      state = 'failed'
      publish(channels.runtimeError, { applicationId, error, fatal: true })
      for (const partition of [...tasks.keys()]) await taskManager.closeTask(partition, true).catch(() => {})
      await ctx.reader?.close().catch(() => {})
      await ctx.restoreReader?.close().catch(() => {})
      await ctx.member?.close().catch(() => {})
      await limits.close()
      rejectStarted(error)
      rejectDone(error)
    }
  }

  const droppedAtStop: UncommittedTask[] = []
  function describeUncommitted(live: LiveTask): UncommittedTask {
    const processed = Object.fromEntries(topology.sourceTopics.map((topic) => [topic, String(live.task.position(topic) ?? '')]))
    return { taskId: live.task.id, partition: live.task.partition, processed }
  }

  let running: Promise<void> | undefined

  return {
    applicationId,
    done,
    start() {
      running ??= run()
      return started
    },
    async stop() {
      ctx.stopRequested = true
      if (running === undefined) {
        state = 'stopped'
        resolveDone()
        return
      }
      await done.catch(() => {})
    },
    state: () => state,
    partitions: () => [...tasks.keys()].sort((a, b) => a - b),
    uncommitted: () => [
      ...droppedAtStop,
      ...[...tasks.values()].filter((live) => live.task.dirty || live.committing !== undefined || live.failure !== undefined).map(describeUncommitted),
    ],
    async metrics() {
      const live = [...tasks.values()].map((t) => t.task.counters)
      const { retired } = taskManager
      const sum = (key: keyof typeof retired) => retired[key] + live.reduce((total, c) => total + c[key], 0)
      return {
        state,
        tasks: tasks.size,
        processed: sum('processed'),
        uncommitted: [...tasks.values()].reduce((total, t) => total + t.task.uncommittedRecords, 0),
        outputs: sum('outputs'),
        deadLettered: sum('deadLettered'),
        skipped: sum('skipped'),
        timersFired: sum('timersFired'),
        commits: totals.commits,
        failedCommits: totals.failedCommits,
        lastCommitMs: totals.lastCommitMs,
        restoredRecords: totals.restoredRecords,
        restoring: totals.restoring,
        timersPending: (await Promise.all([...tasks.values()].map((t) => t.task.pendingTimers()))).reduce((a, b) => a + b, 0),
        assigned: [...new Set((ctx.member?.assignments() ?? []).map((p) => p.partition))].sort((a, b) => a - b),
        failures: [...troubles.byPartition]
          .filter(([, t]) => t.stopped !== undefined || t.failures > 0)
          .sort(([a], [b]) => a - b)
          .map(([partition, t]): TaskFailure => {
            const error = t.stopped ?? t.error
            return {
              partition,
              state: t.stopped === undefined ? 'failing' : 'stopped',
              failures: t.failures,
              code: isWeirError(error) ? error.code : 'unexpected',
              message: error instanceof Error ? error.message : String(error),
              ...(t.stopped === undefined ? { retryInMs: tasks.has(partition) ? 0 : Math.max(0, t.retryAt - now()) } : {}),
              offsets: t.offsets,
              ...(t.record === undefined ? {} : { record: { topic: t.record.topic, offset: String(t.record.offset) } }),
            }
          }),
      }
    },
  }
}
