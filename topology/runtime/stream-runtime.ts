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
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import { channels, publish } from '../../core/diagnostics.ts'
import { WeirError, invalidOptions, isWeirError } from '../../core/errors.ts'
import { checkReplication, committedOffsets, createAdmin, createGroupMember, createPartitionReader, createProducer, isSecurityError, validateReplication, withReplication } from '../../kafka/index.ts'
import type { KafkaConnection, ReplicationSettings } from '../../kafka/index.ts'
import type { ConsumedRecord, GroupMember, KafkaProducer, KafkaTransaction, OutgoingRecord, PartitionReader, TopicPartition, TopicPartitionOffset } from '../../kafka/index.ts'
import type { BatchOperation, ByteStore } from '../../state/kv-store.ts'
import { STORE_KINDS } from '../../state/store-kinds.ts'
import type { StoreOpener } from '../../state/store-kinds.ts'
import type { Topology } from '../define.ts'
import { DEFAULT_MAX_MESSAGE_BYTES } from './dead-letter.ts'
import { storeHooksOf } from './store-hooks.ts'
import { Task } from './task.ts'
import type { ErrorPolicy } from './task.ts'

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
  /** Static group membership (`group.instance.id`): a restart within the session timeout keeps the partitions. */
  groupInstanceId?: string
  /** Local state of partitions this worker no longer owns is deleted after this delay (default 10 min). */
  stateCleanupDelayMs?: number
  /** Create changelog and dead-letter topics when missing (default true). */
  createTopics?: boolean
  /** Timers fired per task per loop round (default 1000). */
  maxTimersPerRound?: number
  /**
   * The largest record the dead-letter topics accept, bytes. Default: each topic's max.message.bytes, asked from
   * the broker (DescribeConfigs) once per topic; 1 MiB + 12 (Kafka's default) until the answer is known.
   */
  maxMessageBytes?: number
  /**
   * Consecutive failures of a task at the same offsets that the broker refused (for example an output larger than
   * max.message.bytes) before the error policy is applied to the record there (default 5; docs/worker.md, "Failing tasks").
   */
  maxTaskFailures?: number
  /** Backoff before a failed task is opened again: doubles per consecutive failure from `min` up to `max` (default 100 ms .. 30 s). */
  failureBackoffMs?: { min?: number; max?: number }
  clientId?: string
  now?: () => number
}

export interface RuntimeMetrics {
  state: RuntimeState
  tasks: number
  /** Input records processed and committed. */
  processed: number
  /** Input records processed and not yet committed (work a crash now would have redone). */
  uncommitted: number
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
  /** Partitions the group assigned to this worker (those in `failures` included). */
  assigned: number[]
  /** Tasks that are failing (backing off between attempts) or stopped, with the reason. */
  failures: TaskFailure[]
}

/** A task that failed and has not yet committed again, or that was stopped. */
export interface TaskFailure {
  partition: number
  /** failing: it is opened again after a backoff; stopped: it is not processed until the worker restarts. */
  state: 'failing' | 'stopped'
  /** Consecutive failures at the same input offsets. */
  failures: number
  code: string
  message: string
  /** failing: ms until it is opened again (0: open, processing one record per transaction). */
  retryInMs?: number
  /** Where the task failed: the next input offset of each source topic. */
  offsets: Record<string, string>
  /** The record the error policy was applied to (WEIR_ERR_POISON_RECORD), or that stopped the task. */
  record?: { topic: string; offset: string }
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
  /** Tasks holding work not committed (processed, in a commit in flight, or in a commit that failed at stop). */
  uncommitted(): UncommittedTask[]
}

export interface UncommittedTask {
  taskId: string
  partition: number
  /** Next offset to process per source topic: what was processed; the next owner redoes it from the committed offsets. */
  processed: Record<string, string>
}

interface LiveTask {
  task: Task
  producer: KafkaProducer
  transaction: KafkaTransaction | undefined
  stores: Map<string, ByteStore>
  dir: string
  checkpoints: Record<string, string>
  /** The commit in flight (settles, never rejects), if any. */
  committing: Promise<void> | undefined
  /** Why the last commit failed: the loop closes the task and opens it again from Kafka. */
  failure: { error: unknown; attempt: CommitAttempt } | undefined
  /** Input records processed since the last commit plan (the last one's place): what the next commit carries. */
  sincePlan: { records: number; last: { topic: string; offset: bigint } | undefined }
  /** When this task commits next while records keep coming (ms, the runtime clock). */
  nextCommit: number
}

interface CommitAttempt {
  positions: Map<string, bigint>
  records: number
  last: { topic: string; offset: bigint } | undefined
}

/**
 * A partition whose task failed, kept across its re-opening: the failures in a row at the same input offsets,
 * when to try again, and records the error policy is applied to instead of processing them.
 */
interface Trouble {
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
  if (options.maxMessageBytes !== undefined && !(Number.isInteger(options.maxMessageBytes) && options.maxMessageBytes >= 1024)) {
    violations.push('maxMessageBytes must be an integer >= 1024')
  }
  if (options.maxTaskFailures !== undefined && !(Number.isInteger(options.maxTaskFailures) && options.maxTaskFailures >= 1)) {
    violations.push('maxTaskFailures must be a positive integer')
  }
  const backoffMin = options.failureBackoffMs?.min ?? 100
  const backoffMax = options.failureBackoffMs?.max ?? 30_000
  if (!(Number.isInteger(backoffMin) && backoffMin >= 0)) violations.push('failureBackoffMs.min must be a non-negative integer')
  if (!(Number.isInteger(backoffMax) && backoffMax >= backoffMin)) violations.push('failureBackoffMs.max must be an integer >= failureBackoffMs.min')
  validateReplication(options.replication, violations)
  if (violations.length > 0) throw invalidOptions('StreamRuntime', violations)

  const { applicationId, topology } = options
  const commitIntervalMs = options.commitIntervalMs ?? 100
  const commitWhenIdle = options.commitWhenIdle ?? true
  const errorPolicy = options.errorPolicy ?? 'dead-letter'
  const maxTaskFailures = options.maxTaskFailures ?? 5
  const deadLetterTopic = options.deadLetterTopic ?? ((topic: string) => `${topic}.dlq`)
  const now = options.now ?? Date.now
  const cleanupDelay = options.stateCleanupDelayMs ?? 10 * 60_000
  const brokers = [...options.brokers]
  const client = { brokers, ...(options.connection === undefined ? {} : { connection: options.connection }), ...(options.clientId === undefined ? {} : { clientId: options.clientId }) }
  const changelogStores = Object.entries(topology.stores)
    .filter(([, spec]) => spec.changelog)
    .map(([name]) => name)
  const storeHooks = storeHooksOf(topology)

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
  const troubles = new Map<number, Trouble>()

  // max.message.bytes per topic, asked from the broker once per topic (dead letters are cut to fit it).
  const limits = new Map<string, number>()
  const limitLookups = new Map<string, number>()
  let limitAdmin: ReturnType<typeof createAdmin> | undefined
  function maxRecordBytes(topic: string): number {
    if (options.maxMessageBytes !== undefined) return options.maxMessageBytes
    const known = limits.get(topic)
    if (known !== undefined) return known
    // Not known yet: ask (at most every 10 s per topic) and meanwhile assume the smallest limit seen.
    if ((limitLookups.get(topic) ?? -Infinity) + 10_000 <= now()) {
      limitLookups.set(topic, now())
      limitAdmin ??= createAdmin(client)
      void limitAdmin.maxMessageBytes([topic]).then(
        (found) => {
          for (const [name, limit] of found) limits.set(name, limit)
        },
        () => {},
      )
    }
    return Math.min(DEFAULT_MAX_MESSAGE_BYTES, ...limits.values())
  }

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
      if (options.maxMessageBytes === undefined) {
        const deadLetterTopics = [...topology.sourceTopics, `${applicationId}-timers`].map(deadLetterTopic)
        for (const [name, limit] of await admin.maxMessageBytes(deadLetterTopics).catch(() => new Map<string, number>())) limits.set(name, limit)
      }
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

  async function restoreStore(live: LiveTask, taskId: string, partition: number, name: string, store: ByteStore): Promise<number> {
    const topic = changelogTopic(applicationId, name)
    const restorer = restoreReader as PartitionReader
    const [end] = await restorer.offsets([{ topic, partition }], 'latest')
    const [start] = await restorer.offsets([{ topic, partition }], 'earliest')
    if (end === undefined || start === undefined) return 0
    const kind = topology.stores[name]?.backend
    let position = kind !== undefined && !STORE_KINDS[kind].persistent ? start.offset : BigInt(live.checkpoints[name] ?? start.offset)
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
    const restoredHook = storeHooks.get(name)?.restored
    if (restored > 0 && restoredHook !== undefined) await restoredHook(store)
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
      totals.restoring++
      let restoredRecords = 0
      try {
        for (const name of changelogStores) restoredRecords += await restoreStore(live, taskId, partition, name, stores.get(name) as ByteStore)
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
        maxRecordBytes,
        ...(troubles.get(partition)?.poisoned.length ? { poisoned: [...(troubles.get(partition) as Trouble).poisoned] } : {}),
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
    // A partition that went elsewhere takes its failures along: its new owner (or we, later) start afresh.
    for (const partition of [...troubles.keys()]) if (!wanted.has(partition)) troubles.delete(partition)
    for (const partition of [...wanted].sort((a, b) => a - b)) {
      if (tasks.has(partition) || stopRequested) continue
      const trouble = troubles.get(partition)
      // Stopped, or backing off after a failure: opened again when the backoff is over (the loop sees to it).
      if (trouble !== undefined && (trouble.stopped !== undefined || trouble.retryAt > now())) continue
      publish(channels.task, { applicationId, taskId: `${applicationId}-${partition}`, partition, event: 'assigned' })
      tasks.set(partition, await openTask(partition))
    }
  }

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
    return { outputs: plan.outputs.length, changelog: changelog.length, positions: plan.positions }
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
      const attempt: CommitAttempt = { positions: new Map(), records: live.sincePlan.records, last: live.sincePlan.last }
      live.sincePlan = { records: 0, last: undefined }
      const outcome = commitTask(live, attempt).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      )
      live.committing = outcome.then((result) => {
        if (!result.ok) live.failure = { error: result.error, attempt }
        else recovered(live.task.partition, result.value.positions)
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
      await closeTask(live.task.partition, true)
      if (isWeirError(error, 'WEIR_ERR_KAFKA_FENCED')) continue
      failed(live.task.partition, error, offsets, attempt)
      pendingAssignment = member?.assignments() ?? []
    }
  }

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
    const assigned = new Set((member?.assignments() ?? []).map((p) => p.partition))
    return [...troubles].filter(([partition, t]) => t.stopped === undefined && !tasks.has(partition) && assigned.has(partition)).map(([, t]) => t)
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
      if (pendingAssignment === undefined && backingOff().some((t) => t.retryAt <= now())) pendingAssignment = member?.assignments() ?? []
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
          const live = queue.live
          if (live.failure !== undefined) continue
          const isolated = troubles.get(live.task.partition)?.isolate === true
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
          await live.task.process(record)
          live.sincePlan.records++
          live.sincePlan.last = { topic: record.topic, offset: record.offset }
          if (isolated) startCommits((l) => l === live)
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
    for (const live of tasks.values()) if (live.failure !== undefined) droppedAtStop.push(describeUncommitted(live))
    await member?.leave()
    for (const partition of [...tasks.keys()]) await closeTask(partition, true)
    await reader?.close()
    await restoreReader?.close()
    await member?.close()
    await limitAdmin?.close().catch(() => {})
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
        ...(options.groupInstanceId === undefined ? {} : { groupInstanceId: options.groupInstanceId }),
        // State folders on disk (this run's and earlier ones'): the assignor moves partitions to where their state is.
        localPartitions: async () =>
          (await readdir(join(options.stateDir, applicationId)).catch(() => [])).filter((name) => /^\d+$/.test(name)).map(Number),
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
      await limitAdmin?.close().catch(() => {})
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
    uncommitted: () => [
      ...droppedAtStop,
      ...[...tasks.values()].filter((live) => live.task.dirty || live.committing !== undefined || live.failure !== undefined).map(describeUncommitted),
    ],
    async metrics() {
      const live = [...tasks.values()].map((t) => t.task.counters)
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
        assigned: [...new Set((member?.assignments() ?? []).map((p) => p.partition))].sort((a, b) => a - b),
        failures: [...troubles]
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

/** The broker refused the records (a non-retriable protocol error, such as MESSAGE_TOO_LARGE): trying again will not help. */
function refusedByBroker(error: unknown): boolean {
  const broker = isWeirError(error) ? (error.details.brokerErrors as Array<{ retriable: boolean }> | undefined) : undefined
  return broker !== undefined && broker.some((b) => !b.retriable)
}
