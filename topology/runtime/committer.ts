// Commits, like Kafka Streams' record collector and committer: a task's commit plan (outputs, changelog records of
// its store writes, input offsets) goes into its Kafka transaction, beside the loop; only when the transaction
// committed are the store writes applied locally and the checkpoints moved. A task whose commit failed is closed and
// opened again from Kafka, its failure counted by the failure bookkeeping (task-troubles.ts).
import { channels, publish } from '../../core/diagnostics.ts'
import { isWeirError } from '../../core/errors.ts'
import { isSecurityError } from '../../kafka/index.ts'
import type { GroupMember, OutgoingRecord } from '../../kafka/index.ts'
import type { CommitAttempt, LiveTask, RuntimeContext } from './runtime-context.ts'
import { changelogTopic, writeCheckpoints } from './state-restore.ts'
import type { TaskManager } from './task-manager.ts'
import type { Troubles } from './task-troubles.ts'

export interface Committer {
  /** Starts a commit for every task that has work, has no commit in flight and for which `due` says so. */
  startCommits(due: (live: LiveTask) => boolean): void
  /** Resolves when every commit in flight settled. */
  commitsSettled(): Promise<void>
  /** Resolves when the next commit settles. */
  nextSettled(): Promise<void>
  handleFailedCommits(): Promise<void>
}

export function createCommitter(ctx: RuntimeContext, troubles: Troubles, taskManager: TaskManager): Committer {
  const { applicationId, topology, changelogStores, storeHooks, tasks, totals, now, commitIntervalMs } = ctx

  async function commitTask(live: LiveTask, attempt: CommitAttempt): Promise<{ outputs: number; changelog: number; positions: Map<string, bigint> }> {
    const plan = live.task.commitPlan()
    attempt.positions = plan.positions
    const changelog: OutgoingRecord[] = []
    for (const name of changelogStores) {
      const changelogged = storeHooks.get(name)?.changelogged
      for (const op of plan.storeWrites.get(name) ?? []) {
        if (changelogged !== undefined && !changelogged(op.key)) continue
        changelog.push({
          topic: changelogTopic(applicationId, name),
          partition: live.task.partition,
          key: op.key,
          value: op.type === 'put' ? op.value : null,
        })
      }
    }
    const transaction = live.transaction ?? (await live.producer.beginTransaction())
    live.transaction = transaction
    const produced = await transaction.send([...plan.outputs, ...changelog])
    await transaction.sendOffsets(
      ctx.member as GroupMember,
      [...plan.positions].map(([topic, offset]) => ({ topic, partition: live.task.partition, offset })),
    )
    await transaction.commit()
    live.transaction = undefined
    await live.task.committed()
    for (const name of changelogStores) {
      const topic = changelogTopic(applicationId, name)
      const offsets = produced.filter((p) => p.topic === topic).map((p) => p.offset)
      if (offsets.length > 0) live.checkpoints[name] = String(offsets.reduce((a, b) => (a > b ? a : b)))
    }
    if (changelog.length > 0) await writeCheckpoints(live)
    return { outputs: plan.outputs.length, changelog: changelog.length, positions: plan.positions }
  }

  // Signals the loop when a commit settles (it may be waiting for records while a task wants to commit again).
  let commitSettled = Promise.withResolvers<void>()

  /** Starts a commit for every task that has work, has no commit in flight and for which `due` says so. */
  function startCommits(due: (live: LiveTask) => boolean): void {
    // A task with records in flight commits once they finished (the loop lets it drain): a commit covers only
    // finished records, and all their outputs and writes.
    const batch = [...tasks.values()].filter(
      (live) => live.committing === undefined && live.failure === undefined && live.task.dirty && live.task.inFlight === 0 && due(live),
    )
    if (batch.length === 0) return
    const started = performance.now()
    const settled = batch.map((live) => {
      live.nextCommit = now() + commitIntervalMs
      const attempt: CommitAttempt = { positions: new Map(), records: live.sincePlan.records, last: live.sincePlan.last }
      live.sincePlan = { records: 0, last: undefined }
      const outcome = commitTask(live, attempt).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      )
      live.committing = outcome.then((result) => {
        if (!result.ok) live.failure = { error: result.error, attempt }
        else troubles.recovered(live.task.partition, result.value.positions)
        live.committing = undefined
        commitSettled.resolve()
        commitSettled = Promise.withResolvers<void>()
      })
      return outcome
    })
    void Promise.all(settled).then((results) => {
      let outputs = 0
      let changelogRecords = 0
      let firstError: unknown
      let failed = 0
      for (const result of results) {
        if (result.ok) {
          outputs += result.value.outputs
          changelogRecords += result.value.changelog
        } else {
          failed++
          firstError ??= result.error
        }
      }
      totals.commits += results.length - failed
      totals.failedCommits += failed
      totals.lastCommitMs = performance.now() - started
      publish(channels.commit, {
        applicationId,
        tasks: results.length,
        outputs,
        changelogRecords,
        durationMs: totals.lastCommitMs,
        ...(failed > 0 ? { error: firstError } : {}),
      })
    })
  }

  async function commitsSettled(): Promise<void> {
    await Promise.all([...tasks.values()].map((live) => live.committing))
  }

  // A task whose commit failed is closed (its transaction aborted, its uncommitted work dropped, including what it
  // processed while the commit was in flight) and opened again from what Kafka holds: committed offsets and
  // changelogs. Fenced means another worker owns it now; the coming rebalance tells us.
  async function handleFailedCommits(): Promise<void> {
    for (const live of [...tasks.values()]) {
      if (live.failure === undefined) continue
      const { error, attempt } = live.failure
      // A refused login, an untrusted certificate or a missing ACL does not heal by retrying: the runtime fails.
      if (isSecurityError(error)) throw error
      publish(channels.runtimeError, { applicationId, error, fatal: false })
      live.task.rollback()
      const offsets: Record<string, string> = {}
      for (const topic of topology.sourceTopics) offsets[topic] = String(live.task.position(topic) ?? 0n)
      await taskManager.closeTask(live.task.partition, true)
      if (isWeirError(error, 'WEIR_ERR_KAFKA_FENCED')) {
        recheckFenced(live.task.partition)
        continue
      }
      troubles.failed(live.task.partition, error, offsets, attempt)
      ctx.pendingAssignment = ctx.member?.assignments() ?? []
    }
  }

  // Fenced is also what a transaction the broker aborted past its timeout reads as (the epoch was bumped), and then no
  // rebalance comes: a partition still assigned to this member two heartbeats later is opened again.
  function recheckFenced(partition: number): void {
    const heartbeatMs = ctx.options.heartbeatIntervalMs ?? Math.max(100, Math.floor((ctx.options.sessionTimeoutMs ?? 10_000) / 5))
    const timer = setTimeout(() => {
      if (ctx.stopRequested || tasks.has(partition) || ctx.pendingAssignment !== undefined) return
      const assigned = ctx.member?.assignments() ?? []
      if (assigned.some((p) => p.partition === partition)) ctx.pendingAssignment = assigned
    }, 2 * heartbeatMs)
    timer.unref()
  }

  return { startCommits, commitsSettled, nextSettled: () => commitSettled.promise, handleFailedCommits }
}
