// The loop, one per worker process, so processing, timers and punctuations never interleave:
//   fetch (own positions, read_committed) -> task.process -> fire due timers -> punctuate -> start commits
// Between rounds it closes and re-opens tasks whose commit failed and reconciles a new assignment.
import { channels, publish } from '../../core/diagnostics.ts'
import type { ConsumedRecord, PartitionReader } from '../../kafka/index.ts'
import type { Committer } from './committer.ts'
import type { InFlight } from './in-flight.ts'
import type { RecordQueues } from './record-queues.ts'
import type { LiveTask, RuntimeContext } from './runtime-context.ts'
import type { TaskManager } from './task-manager.ts'
import type { Troubles } from './task-troubles.ts'

/** Outputs and store writes a task gathers while its commit is in flight before it waits for that commit. */
const MAX_UNCOMMITTED = 20_000

export interface LoopParts {
  readonly queues: RecordQueues
  readonly troubles: Troubles
  readonly taskManager: TaskManager
  readonly committer: Committer
}

/** The loop of a runtime: runs until a stop is requested (the caller then shuts down) or throws (fatal). */
export function createStreamLoop(ctx: RuntimeContext, parts: LoopParts): () => Promise<void> {
  const { applicationId, topology, tasks, now, commitIntervalMs, idleWaitMs } = ctx
  const { queues, troubles, taskManager, committer } = parts
  const { startCommits, handleFailedCommits, nextSettled } = committer
  const { backingOff } = troubles
  const commitWhenIdle = ctx.options.commitWhenIdle ?? true
  /** How often timers and punctuations are checked between records (ms). */
  const timerCheckMs = Math.min(10, commitIntervalMs)

  // A task with records in flight (maxInFlight > 1) fires its timers and punctuations once they finished: the
  // loop starts no more of its records while something is due (barrier), so timers never meet a record halfway.
  const due = new Set<LiveTask>()
  async function fireDue(): Promise<void> {
    const time = now()
    for (const live of due) if (tasks.get(live.task.partition) !== live) due.delete(live)
    for (const live of tasks.values()) {
      if (live.task.inFlight > 0) {
        if (await live.task.dueAt(time)) due.add(live)
        continue
      }
      due.delete(live)
      await live.task.fireTimers(time)
      await live.task.punctuate(time)
    }
  }
  /** A task that drained for its due timers: fire them now rather than at the next check. */
  const drainedForTimers = () => {
    for (const live of due) if (live.task.inFlight === 0) return true
    return false
  }
  // The loop stops starting records of a task when a commit or timers are due for it, so it drains.
  const barrier = (live: LiveTask, time: number) =>
    due.has(live) || (live.committing === undefined && live.task.dirty && (live.task.commitRequested || time >= live.nextCommit))
  const inFlight = () => [...tasks.values()].filter((live) => live.task.inFlight > 0)
  /** Resolves when a record in flight in any task finished. */
  const anySettled = () => Promise.race(inFlight().map((live) => (live.task.concurrent as InFlight).settled()))
  const throwIfFailed = () => {
    for (const live of tasks.values()) live.task.concurrent?.throwIfFailed()
  }

  return async function runLoop(): Promise<void> {
    let nextTimerCheck = now()
    let fetchFailures = 0
    // A task commits at its interval, when it asks, or (commitWhenIdle) when every fetched record has been
    // processed; not while its previous commit is in flight (then as soon as that one settles, if still due).
    const commitIfDue = () => {
      const time = now()
      const idle = commitWhenIdle && queues.size === 0
      startCommits((live) => idle || live.task.commitRequested || time >= live.nextCommit)
    }
    const anyFailed = () => [...tasks.values()].some((live) => live.failure !== undefined)
    while (!ctx.stopRequested) {
      await handleFailedCommits()
      if (ctx.pendingAssignment === undefined && backingOff().some((t) => t.retryAt <= now())) ctx.pendingAssignment = ctx.member?.assignments() ?? []
      if (ctx.pendingAssignment !== undefined) {
        const assignment = ctx.pendingAssignment
        ctx.pendingAssignment = undefined
        await taskManager.reconcile(assignment)
      }
      queues.dropStale(tasks)
      if (tasks.size === 0) {
        await new Promise((r) => setTimeout(r, 50))
        continue
      }
      const positions = queues.positionsToFetch(tasks, topology.sourceTopics)
      if (positions.length > 0) {
        // With records queued, fetch without waiting. Idle, wait for new records up to the next commit or the
        // earliest timer or punctuation due (an idle worker wakes about ten times a second, not a hundred).
        let wait = 0
        if (queues.size === 0) {
          let due = Infinity
          for (const t of backingOff()) due = Math.min(due, t.retryAt)
          for (const live of tasks.values()) {
            due = Math.min(due, await live.task.nextDue())
            // A dirty task waiting for its interval (commitWhenIdle off); one with a commit in flight wakes the
            // loop when that commit settles (below).
            if (live.task.dirty && live.committing === undefined && live.failure === undefined) due = Math.min(due, live.nextCommit)
          }
          wait = Math.max(0, Math.min(idleWaitMs, due - now()))
        }
        let batches: Awaited<ReturnType<PartitionReader['fetch']>> = []
        try {
          const fetching = (ctx.reader as PartitionReader).fetch(positions, { maxWaitMs: wait })
          // Waiting for records while commits or records are in flight: when one settles, commit what its task
          // processed meanwhile (the loop is idle) and fire what waited for it to drain, then keep waiting.
          while (wait > 0 && [...tasks.values()].some((live) => live.committing !== undefined || live.task.inFlight > 0)) {
            const fetched = await Promise.race([fetching.then(() => true, () => true), nextSettled().then(() => false), anySettled().then(() => false)])
            if (fetched) break
            throwIfFailed()
            if (drainedForTimers()) await fireDue()
            commitIfDue()
          }
          batches = await fetching
          fetchFailures = 0
        } catch (error) {
          // The broker or a leader is away: keep the tasks (nothing uncommitted is lost) and try again, backing off
          // up to a second (the Java consumer's retry.backoff.max.ms): a longer wait only delays the first fetch
          // from the new leaders once the controller has moved them.
          publish(channels.runtimeError, { applicationId, error, fatal: false })
          fetchFailures++
          await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** fetchFailures, 1000)))
        }
        for (const batch of batches) {
          const live = tasks.get(batch.partition)
          if (live === undefined) continue
          if (batch.outOfRange) {
            // auto.offset.reset=earliest: the committed position fell off the log.
            const [reset] = await (ctx.reader as PartitionReader).offsets([batch], 'earliest')
            if (reset !== undefined) live.task.advance(batch.topic, reset.offset)
            continue
          }
          if (batch.records.length === 0) live.task.advance(batch.topic, batch.nextOffset)
          else queues.add(live, batch)
        }
      }
      // Round-robin over the queues until one runs dry (then fetch again) or a commit is due.
      let drained = false
      while (queues.size > 0 && !drained && !ctx.stopRequested) {
        let started = 0
        let blocked = 0
        const time = now()
        for (const [key, queue] of queues.entries()) {
          const live = queue.live
          if (live.failure !== undefined) continue
          const isolated = troubles.byPartition.get(live.task.partition)?.isolate === true
          // After a failure (isolated, below) a task processes serially until it is past it.
          const concurrent = isolated ? undefined : live.task.concurrent
          if (concurrent !== undefined && (concurrent.full || (concurrent.count > 0 && barrier(live, time)))) {
            blocked++
            continue
          }
          if (concurrent === undefined) await live.task.concurrent?.drained()
          if (isolated) {
            // After a failure, one input record per transaction until the task is past it: if the broker refuses
            // a transaction again, the record it carried is the one to blame.
            if (live.committing !== undefined) await live.committing
            if (live.failure === undefined && live.task.dirty) {
              startCommits((l) => l === live)
              await live.committing
            }
            if (live.failure !== undefined) continue
          } else if (live.committing !== undefined && live.task.uncommitted >= MAX_UNCOMMITTED) {
            // Processing goes on while a commit is in flight, but not without bound: a task that gathered this much
            // for its next commit waits for the one in flight (memory stays at about two commits' worth).
            await live.committing
          }
          const record = queue.records[queue.index++] as ConsumedRecord
          started++
          if (concurrent !== undefined) live.task.start(record)
          else await live.task.process(record)
          live.sincePlan.records++
          live.sincePlan.last = { topic: record.topic, offset: record.offset }
          if (isolated) startCommits((l) => l === live)
          if (queue.index >= queue.records.length) {
            queue.live.task.advance(queue.topic, queue.nextOffset)
            queues.remove(key)
            drained = true
          }
        }
        // Every queue waits for its task to drain or make room: wait for a record to finish.
        if (started === 0 && blocked > 0) await anySettled()
        throwIfFailed()
        if (now() >= nextTimerCheck || drainedForTimers()) {
          await fireDue()
          nextTimerCheck = now() + timerCheckMs
        }
        commitIfDue()
        // A failed commit: close and re-open that task before going on (its queues become stale).
        if (anyFailed()) break
      }
      if (now() >= nextTimerCheck || queues.size === 0) {
        await fireDue()
        nextTimerCheck = now() + timerCheckMs
      }
      commitIfDue()
    }
    // Stopping: the records in flight finish, so the final commit covers them.
    for (const live of tasks.values()) await live.task.concurrent?.drained()
    throwIfFailed()
  }
}
