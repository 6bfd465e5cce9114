// Runs a topology on Kafka: one task per input partition, exactly-once per task.
//
// One loop per worker process, so processing, timers and punctuations never interleave:
//   fetch (own positions, read_committed) -> task.process -> fire due timers -> punctuate -> start commits
// Every commit interval each task with work commits one Kafka transaction holding its outputs, its store
// writes (changelog records) and its input offsets; only then are the store writes applied to the local store.
// A commit runs beside the loop: the task hands over what it has (its write buffers seal that layer) and goes
// on processing into the next one while the transaction is in flight; one commit per task at a time.
// Each task has its own transactional producer (id `<applicationId>-<partition>`): the next owner of a
// partition fences the previous one and aborts its open transaction before reading offsets and changelogs.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import { channels, publish } from '../../core/diagnostics.ts'
import { WeirError, invalidOptions, isWeirError } from '../../core/errors.ts'
import { checkReplication, committedOffsets, createAdmin, createGroupMember, createPartitionReader, createProducer, isSecurityError, validateReplication, withReplication } from '../../kafka/index.ts'
import type { KafkaConnection, ReplicationSettings } from '../../kafka/index.ts'
import type { ConsumedRecord, GroupMember, KafkaProducer, KafkaTransaction, OutgoingRecord, PartitionReader, TopicPartition, TopicPartitionOffset } from '../../kafka/index.ts'
import { TIMER_STORE_SUFFIX } from '../define.ts'
import type { Topology } from '../define.ts'
import type { BaseStore, BatchOperation } from './base-store.ts'
import { Task } from './task.ts'
import { isKeyIndexKey, rebuildKeyIndex } from './timers.ts'
import type { ErrorPolicy } from './task.ts'

export interface OpenedStore extends BaseStore {
  close(): Promise<void>
  /** Removes all data (used before a full restore). */
  clear(): Promise<void>
}

export type StoreOpener = (spec: { name: string; backend: 'rocksdb' | 'memory'; path: string }) => Promise<OpenedStore>

export interface StreamRuntimeOptions {
  /** Names the consumer group, transactional ids, changelog topics and the state folder. */
  applicationId: string
  topology: Topology
  brokers: readonly string[]
  /** TLS, SASL and compression of every client the runtime makes (kafka/connection.ts). */
  connection?: KafkaConnection
  /** Replication of the changelog and dead-letter topics it creates (default: the broker's defaults). */
  replication?: ReplicationSettings
  /** Local state folder (RocksDB stores, checkpoints). */
  stateDir: string
  openStore: StoreOpener
  /** How often each task commits its transaction while records keep coming (default 100 ms). */
  commitIntervalMs?: number
  /**
   * Also commit as soon as the worker has nothing left to process (every fetched record processed), without
   * waiting for the interval (default true). At light load a result is visible one transaction after it was
   * made instead of up to an interval later; under a backlog the queues are seldom all empty, so commits stay
   * about one per interval.
   */
  commitWhenIdle?: boolean
  /** What a processing error does: dead-letter (default), skip, or fail the runtime. */
  errorPolicy?: ErrorPolicy
  /** Dead-letter topic of a source topic (default `<topic>.dlq`). */
  deadLetterTopic?: (sourceTopic: string) => string
  sessionTimeoutMs?: number
  heartbeatIntervalMs?: number
  /** Local state of partitions this worker no longer owns is deleted after this delay (default 10 min). */
  stateCleanupDelayMs?: number
  /** Create changelog and dead-letter topics when missing (default true). */
  createTopics?: boolean
  /** Timers fired per task per loop round (default 1000). */
  maxTimersPerRound?: number
  clientId?: string
  now?: () => number
}

export interface RuntimeMetrics {
  state: RuntimeState
  tasks: number
  processed: number
  outputs: number
  deadLettered: number
  skipped: number
  timersFired: number
  commits: number
  failedCommits: number
  lastCommitMs: number
  restoredRecords: number
  restoring: number
  timersPending: number
}

export type RuntimeState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'

export interface StreamRuntime {
  readonly applicationId: string
  /** Resolves once the worker joined the group and opened its first tasks. */
  start(): Promise<void>
  /** Finishes the current round, commits, leaves the group and closes everything. */
  stop(): Promise<void>
  /** Settles when the runtime stopped: rejects with the fatal error if it failed. */
  readonly done: Promise<void>
  state(): RuntimeState
  metrics(): Promise<RuntimeMetrics>
  /** Partitions this worker owns now. */
  partitions(): number[]
}

interface LiveTask {
  task: Task
  producer: KafkaProducer
  transaction: KafkaTransaction | undefined
  stores: Map<string, OpenedStore>
  dir: string
  checkpoints: Record<string, string>
  /** The commit in flight (settles, never rejects), if any. */
  committing: Promise<void> | undefined
  /** Why the last commit failed: the loop closes the task and opens it again from Kafka. */
  failure: { error: unknown } | undefined
  /** When this task commits next while records keep coming (ms, the runtime clock). */
  nextCommit: number
}

export function changelogTopic(applicationId: string, store: string): string {
  return `${applicationId}-${store}-changelog`
}

export function createStreamRuntime(options: StreamRuntimeOptions): StreamRuntime {
  const violations: string[] = []
  if (typeof options.applicationId !== 'string' || !/^[A-Za-z0-9._-]+$/.test(options.applicationId)) {
    violations.push('applicationId must be a non-empty string of letters, digits, ., _ and -')
  }
  if (typeof options.stateDir !== 'string' || options.stateDir.length === 0) violations.push('stateDir must be a folder path')
  if (typeof options.openStore !== 'function') violations.push('openStore must be a function')
  if (options.commitIntervalMs !== undefined && !(Number.isInteger(options.commitIntervalMs) && options.commitIntervalMs > 0)) {
    violations.push('commitIntervalMs must be a positive integer')
  }
  if (options.commitWhenIdle !== undefined && typeof options.commitWhenIdle !== 'boolean') violations.push('commitWhenIdle must be a boolean')
  if (options.errorPolicy !== undefined && !['dead-letter', 'skip', 'fail'].includes(options.errorPolicy)) {
    violations.push("errorPolicy must be 'dead-letter', 'skip' or 'fail'")
  }
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) violations.push('brokers must be a non-empty array')
  validateReplication(options.replication, violations)
  if (violations.length > 0) throw invalidOptions('StreamRuntime', violations)

  const { applicationId, topology } = options
  const commitIntervalMs = options.commitIntervalMs ?? 100
  const commitWhenIdle = options.commitWhenIdle ?? true
  const errorPolicy = options.errorPolicy ?? 'dead-letter'
  const deadLetterTopic = options.deadLetterTopic ?? ((topic: string) => `${topic}.dlq`)
  const now = options.now ?? Date.now
  const cleanupDelay = options.stateCleanupDelayMs ?? 10 * 60_000
  const brokers = [...options.brokers]
  const client = { brokers, ...(options.connection === undefined ? {} : { connection: options.connection }), ...(options.clientId === undefined ? {} : { clientId: options.clientId }) }
  const changelogStores = Object.entries(topology.stores)
    .filter(([, spec]) => spec.changelog)
    .map(([name]) => name)
  // Timer stores changelog only their time space; the key index is rebuilt after a restore (timers.ts).
  const timerStores = new Set(Object.keys(topology.stores).filter((name) => name.endsWith(TIMER_STORE_SUFFIX)))

  let state: RuntimeState = 'created'
  let member: GroupMember | undefined
  let reader: PartitionReader | undefined
  let restoreReader: PartitionReader | undefined
  const tasks = new Map<number, LiveTask>()
  const cleanups = new Map<number, NodeJS.Timeout>()
  /** State folders being removed right now: a re-assigned partition waits for its removal to finish. */
  const removals = new Map<number, Promise<void>>()
  let pendingAssignment: TopicPartition[] | undefined
  let stopRequested = false
  let partitionCount = 0
  const totals = { commits: 0, failedCommits: 0, lastCommitMs: 0, restoredRecords: 0, restoring: 0 }
  // Counters of tasks that were closed, so metrics stay monotonic across rebalances.
  const retired = { processed: 0, outputs: 0, deadLettered: 0, skipped: 0, timersFired: 0 }

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

  async function prepareTopics(): Promise<void> {
    const admin = createAdmin(client)
    try {
      const counts = new Map<string, number>()
      for (const topic of topology.sourceTopics) counts.set(topic, await admin.partitionCount(topic))
      const distinct = new Set(counts.values())
      if (distinct.size !== 1) {
        throw new WeirError(
          'WEIR_ERR_NOT_COPARTITIONED',
          `source topics must have the same partition count: ${[...counts].map(([t, c]) => `${t}=${c}`).join(', ')}`,
          { details: { partitions: Object.fromEntries(counts) } },
        )
      }
      partitionCount = [...distinct][0] as number
      const internal = [...changelogStores.map((store) => changelogTopic(applicationId, store)), ...[...topology.sourceTopics, `${applicationId}-timers`].map(deadLetterTopic)]
      if (options.createTopics !== false) await admin.createTopics(withReplication([
        ...changelogStores.map((store) => ({
          name: changelogTopic(applicationId, store),
          partitions: partitionCount,
          configs: { 'cleanup.policy': 'compact' },
        })),
        ...[...topology.sourceTopics, `${applicationId}-timers`].map((topic) => ({ name: deadLetterTopic(topic), partitions: partitionCount })),
      ], options.replication))
      await checkReplication(admin, [...topology.sourceTopics, ...internal], options.replication, applicationId)
    } finally {
      await admin.close()
    }
  }

  async function readCheckpoints(dir: string): Promise<Record<string, string>> {
    try {
      return JSON.parse(await readFile(join(dir, 'checkpoints.json'), 'utf8')) as Record<string, string>
    } catch {
      return {}
    }
  }

  // Written after the store writes it covers, so a checkpoint is never ahead of its store; replaying
  // changelog records the store already has is harmless (last write per key wins).
  async function writeCheckpoints(live: LiveTask): Promise<void> {
    await writeFile(join(live.dir, 'checkpoints.json'), JSON.stringify(live.checkpoints))
  }

  async function restoreStore(live: LiveTask, taskId: string, partition: number, name: string, store: OpenedStore): Promise<number> {
    const topic = changelogTopic(applicationId, name)
    const restorer = restoreReader as PartitionReader
    const [end] = await restorer.offsets([{ topic, partition }], 'latest')
    const [start] = await restorer.offsets([{ topic, partition }], 'earliest')
    if (end === undefined || start === undefined) return 0
    let position = topology.stores[name]?.backend === 'memory' ? start.offset : BigInt(live.checkpoints[name] ?? start.offset)
    if (position < start.offset || position > end.offset) {
      // The checkpoint does not fit this changelog (recreated or truncated): rebuild from scratch.
      await store.clear()
      position = start.offset
    }
    let restored = 0
    while (position < end.offset) {
      const batches = await restorer.fetch([{ topic, partition, offset: position }], { maxWaitMs: 50 })
      for (const batch of batches) {
        if (batch.outOfRange) {
          await store.clear()
          position = start.offset
          continue
        }
        const operations: BatchOperation[] = batch.records.map((r) =>
          r.value === undefined ? { type: 'delete', key: r.key ?? Buffer.alloc(0) } : { type: 'put', key: r.key ?? Buffer.alloc(0), value: r.value },
        )
        if (operations.length > 0) await store.write(operations)
        restored += operations.length
        position = batch.nextOffset
        publish(channels.restoreProgress, { applicationId, taskId, store: name, restored, remaining: end.offset - position })
      }
    }
    live.checkpoints[name] = String(position)
    if (restored > 0 && timerStores.has(name)) await rebuildKeyIndex(store)
    return restored
  }

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
    const producer = createProducer({ ...client, transactionalId: taskId, clientId: `${taskId}-producer` })
    const stores = new Map<string, OpenedStore>()
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
        nextCommit: now() + commitIntervalMs,
      }
      for (const [name, spec] of Object.entries(topology.stores)) {
        stores.set(name, await options.openStore({ name, backend: spec.backend, path: join(dir, name) }))
      }
      totals.restoring++
      let restoredRecords = 0
      try {
        for (const name of changelogStores) restoredRecords += await restoreStore(live, taskId, partition, name, stores.get(name) as OpenedStore)
      } finally {
        totals.restoring--
      }
      totals.restoredRecords += restoredRecords
      await writeCheckpoints(live)
      const sources = topology.sourceTopics.map((topic) => ({ topic, partition }))
      const positions = new Map<string, bigint>()
      for (const c of await committedOffsets(client, applicationId, sources)) positions.set(c.topic, c.offset)
      const missing = sources.filter((s) => !positions.has(s.topic))
      for (const o of await (reader as PartitionReader).offsets(missing, 'earliest')) positions.set(o.topic, o.offset)
      live.task = new Task({
        applicationId,
        partition,
        topology,
        stores,
        now,
        errorPolicy,
        deadLetterTopic,
        positions,
        ...(options.maxTimersPerRound === undefined ? {} : { maxTimersPerRound: options.maxTimersPerRound }),
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
    for (const partition of [...wanted].sort((a, b) => a - b)) {
      if (tasks.has(partition) || stopRequested) continue
      publish(channels.task, { applicationId, taskId: `${applicationId}-${partition}`, partition, event: 'assigned' })
      tasks.set(partition, await openTask(partition))
    }
  }

  async function commitTask(live: LiveTask): Promise<{ outputs: number; changelog: number }> {
    const plan = live.task.commitPlan()
    const changelog: OutgoingRecord[] = []
    for (const name of changelogStores) {
      const timers = timerStores.has(name)
      for (const op of plan.storeWrites.get(name) ?? []) {
        if (timers && isKeyIndexKey(op.key)) continue
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
      member as GroupMember,
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
    return { outputs: plan.outputs.length, changelog: changelog.length }
  }

  // Signals the loop when a commit settles (it may be waiting for records while a task wants to commit again).
  let commitSettled = Promise.withResolvers<void>()

  /** Starts a commit for every task that has work, has no commit in flight and for which `due` says so. */
  function startCommits(due: (live: LiveTask) => boolean): void {
    const batch = [...tasks.values()].filter((live) => live.committing === undefined && live.failure === undefined && live.task.dirty && due(live))
    if (batch.length === 0) return
    const started = performance.now()
    const settled = batch.map((live) => {
      live.nextCommit = now() + commitIntervalMs
      const outcome = commitTask(live).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      )
      live.committing = outcome.then((result) => {
        if (!result.ok) live.failure = { error: result.error }
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
      const { error } = live.failure
      // A refused login, an untrusted certificate or a missing ACL does not heal by retrying: the runtime fails.
      if (isSecurityError(error)) throw error
      publish(channels.runtimeError, { applicationId, error, fatal: false })
      live.task.rollback()
      await closeTask(live.task.partition, true)
      if (!isWeirError(error, 'WEIR_ERR_KAFKA_FENCED')) pendingAssignment = member?.assignments() ?? []
      else recheckFenced(live.task.partition)
    }
  }

  // Fenced is also what a transaction the broker aborted past its timeout reads as (the epoch was bumped), and then no
  // rebalance comes: a partition still assigned to this member two heartbeats later is opened again.
  function recheckFenced(partition: number): void {
    const heartbeatMs = options.heartbeatIntervalMs ?? Math.max(100, Math.floor((options.sessionTimeoutMs ?? 10_000) / 5))
    const timer = setTimeout(() => {
      if (stopRequested || tasks.has(partition) || pendingAssignment !== undefined) return
      const assigned = member?.assignments() ?? []
      if (assigned.some((p) => p.partition === partition)) pendingAssignment = assigned
    }, 2 * heartbeatMs)
    timer.unref()
  }

  // Fetched records wait in one queue per (task, source topic), like Kafka Streams' record queues. The loop
  // takes one record from each non-empty queue in turn, so a small topic (deadline registrations, pending
  // results) is never stuck behind a large backlog of another topic of the same task, and between records it
  // fires due timers and commits when the interval is up, so deadlines and commits stay on time during a backlog.
  // A queue that runs dry sends the loop back to fetch (without waiting while other queues still hold records).
  interface RecordQueue {
    readonly live: LiveTask
    readonly topic: string
    readonly records: readonly ConsumedRecord[]
    index: number
    readonly nextOffset: bigint
  }
  const queues = new Map<string, RecordQueue>()
  const queueKey = (topic: string, partition: number) => `${topic}\u0000${partition}`
  /** Outputs and store writes a task gathers while its commit is in flight before it waits for that commit. */
  const MAX_UNCOMMITTED = 20_000
  /** How often timers and punctuations are checked between records (ms). */
  const timerCheckMs = Math.min(10, commitIntervalMs)
  /** Longest fetch wait: below the client's request timeout however long the commit interval is. */
  const idleWaitMs = Math.min(commitIntervalMs, 1000)

  async function fireDue(): Promise<void> {
    const time = now()
    for (const live of tasks.values()) {
      await live.task.fireTimers(time)
      await live.task.punctuate(time)
    }
  }

  async function runLoop(): Promise<void> {
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
    while (!stopRequested) {
      await handleFailedCommits()
      if (pendingAssignment !== undefined) {
        const assignment = pendingAssignment
        pendingAssignment = undefined
        await reconcile(assignment)
      }
      // Queues of tasks that were closed or re-created (a failed commit rewinds them) are dropped.
      for (const [key, queue] of queues) if (tasks.get(queue.live.task.partition) !== queue.live) queues.delete(key)
      if (tasks.size === 0) {
        await new Promise((r) => setTimeout(r, 50))
        continue
      }
      const positions: TopicPartitionOffset[] = []
      for (const live of tasks.values()) {
        for (const topic of topology.sourceTopics) {
          if (!queues.has(queueKey(topic, live.task.partition))) positions.push({ topic, partition: live.task.partition, offset: live.task.position(topic) ?? 0n })
        }
      }
      if (positions.length > 0) {
        // With records queued, fetch without waiting. Idle, wait for new records up to the next commit or the
        // earliest timer or punctuation due (an idle worker wakes about ten times a second, not a hundred).
        let wait = 0
        if (queues.size === 0) {
          let due = Infinity
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
          const fetching = (reader as PartitionReader).fetch(positions, { maxWaitMs: wait })
          // Waiting for records while commits are in flight: when one settles, commit what its task processed
          // meanwhile (the loop is idle), then keep waiting.
          while (wait > 0 && [...tasks.values()].some((live) => live.committing !== undefined)) {
            const fetched = await Promise.race([fetching.then(() => true, () => true), commitSettled.promise.then(() => false)])
            if (fetched) break
            commitIfDue()
          }
          batches = await fetching
          fetchFailures = 0
        } catch (error) {
          // The broker or a leader is away: keep the tasks (nothing uncommitted is lost) and try again.
          publish(channels.runtimeError, { applicationId, error, fatal: false })
          fetchFailures++
          await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** fetchFailures, 5000)))
        }
        for (const batch of batches) {
          const live = tasks.get(batch.partition)
          if (live === undefined) continue
          if (batch.outOfRange) {
            // auto.offset.reset=earliest: the committed position fell off the log.
            const [reset] = await (reader as PartitionReader).offsets([batch], 'earliest')
            if (reset !== undefined) live.task.advance(batch.topic, reset.offset)
            continue
          }
          if (batch.records.length === 0) live.task.advance(batch.topic, batch.nextOffset)
          else queues.set(queueKey(batch.topic, batch.partition), { live, topic: batch.topic, records: batch.records, index: 0, nextOffset: batch.nextOffset })
        }
      }
      // Round-robin over the queues until one runs dry (then fetch again) or a commit is due.
      let drained = false
      while (queues.size > 0 && !drained && !stopRequested) {
        for (const [key, queue] of queues) {
          // Processing goes on while a commit is in flight, but not without bound: a task that gathered this much
          // for its next commit waits for the one in flight (memory stays at about two commits' worth).
          if (queue.live.committing !== undefined && queue.live.task.uncommitted >= MAX_UNCOMMITTED) await queue.live.committing
          await queue.live.task.process(queue.records[queue.index++] as ConsumedRecord)
          if (queue.index >= queue.records.length) {
            queue.live.task.advance(queue.topic, queue.nextOffset)
            queues.delete(key)
            drained = true
          }
        }
        if (now() >= nextTimerCheck) {
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
  }

  async function shutdown(): Promise<void> {
    queues.clear()
    await commitsSettled()
    startCommits(() => true)
    await commitsSettled()
    await member?.leave()
    for (const partition of [...tasks.keys()]) await closeTask(partition, true)
    await reader?.close()
    await restoreReader?.close()
    await member?.close()
  }

  async function run(): Promise<void> {
    state = 'starting'
    try {
      await mkdir(options.stateDir, { recursive: true })
      await prepareTopics()
      reader = createPartitionReader({ ...client, isolation: 'read_committed', maxWaitMs: idleWaitMs })
      restoreReader = createPartitionReader({ ...client, isolation: 'read_committed', maxWaitMs: 50 })
      member = createGroupMember({
        ...client,
        groupId: applicationId,
        topics: topology.sourceTopics,
        ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
        ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      })
      member.onAssignment((partitions) => {
        pendingAssignment = partitions
      })
      const first = await member.join()
      pendingAssignment = undefined
      await reconcile(first)
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
      for (const partition of [...tasks.keys()]) await closeTask(partition, true).catch(() => {})
      await reader?.close().catch(() => {})
      await restoreReader?.close().catch(() => {})
      await member?.close().catch(() => {})
      rejectStarted(error)
      rejectDone(error)
    }
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
      stopRequested = true
      if (running === undefined) {
        state = 'stopped'
        resolveDone()
        return
      }
      await done.catch(() => {})
    },
    state: () => state,
    partitions: () => [...tasks.keys()].sort((a, b) => a - b),
    async metrics() {
      const live = [...tasks.values()].map((t) => t.task.counters)
      const sum = (key: keyof typeof retired) => retired[key] + live.reduce((total, c) => total + c[key], 0)
      return {
        state,
        tasks: tasks.size,
        processed: sum('processed'),
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
      }
    },
  }
}
