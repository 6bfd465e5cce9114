// What the runtime's parts share: the settings resolved from the options, the live tasks, the Kafka clients and
// the totals the metrics report. Each part (restore, task manager, committer, loop) takes this and nothing global.
import type { GroupMember, KafkaConnection, KafkaProducer, KafkaTransaction, PartitionReader, TopicPartition } from '../../kafka/index.ts'
import type { ByteStore } from '../../state/kv-store.ts'
import type { Topology } from '../define.ts'
import type { StreamRuntimeOptions } from './runtime-options.ts'
import { storeHooksOf } from './store-hooks.ts'
import type { StoreHooks } from './store-hooks.ts'
import type { ErrorPolicy } from './error-policy.ts'
import type { Task } from './task.ts'

/** A task this worker runs, with its producer, its open stores and its commit state. */
export interface LiveTask {
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

export interface CommitAttempt {
  positions: Map<string, bigint>
  records: number
  last: { topic: string; offset: bigint } | undefined
}

export interface KafkaClientSettings {
  brokers: string[]
  connection?: KafkaConnection
  clientId?: string
}

export interface RuntimeContext {
  readonly options: StreamRuntimeOptions
  readonly applicationId: string
  readonly topology: Topology
  readonly client: KafkaClientSettings
  readonly now: () => number
  readonly commitIntervalMs: number
  /** Longest fetch wait: below the client's request timeout however long the commit interval is. */
  readonly idleWaitMs: number
  readonly errorPolicy: ErrorPolicy
  readonly deadLetterTopic: (sourceTopic: string) => string
  /** Stores backed by a changelog topic. */
  readonly changelogStores: readonly string[]
  readonly storeHooks: ReadonlyMap<string, StoreHooks>
  /** The tasks open on this worker, by partition. */
  readonly tasks: Map<number, LiveTask>
  readonly totals: { commits: number; failedCommits: number; lastCommitMs: number; restoredRecords: number; restoring: number }
  member: GroupMember | undefined
  reader: PartitionReader | undefined
  restoreReader: PartitionReader | undefined
  /** An assignment the loop reconciles at its next round (a rebalance, or a backoff that ended). */
  pendingAssignment: TopicPartition[] | undefined
  stopRequested: boolean
}

export function createRuntimeContext(options: StreamRuntimeOptions): RuntimeContext {
  const { applicationId, topology } = options
  const commitIntervalMs = options.commitIntervalMs ?? 100
  const brokers = [...options.brokers]
  return {
    options,
    applicationId,
    topology,
    client: { brokers, ...(options.connection === undefined ? {} : { connection: options.connection }), ...(options.clientId === undefined ? {} : { clientId: options.clientId }) },
    now: options.now ?? Date.now,
    commitIntervalMs,
    idleWaitMs: Math.min(commitIntervalMs, 1000),
    errorPolicy: options.errorPolicy ?? 'dead-letter',
    deadLetterTopic: options.deadLetterTopic ?? ((topic: string) => `${topic}.dlq`),
    changelogStores: Object.entries(topology.stores)
      .filter(([, spec]) => spec.changelog)
      .map(([name]) => name),
    storeHooks: storeHooksOf(topology),
    tasks: new Map(),
    totals: { commits: 0, failedCommits: 0, lastCommitMs: 0, restoredRecords: 0, restoring: 0 },
    member: undefined,
    reader: undefined,
    restoreReader: undefined,
    pendingAssignment: undefined,
    stopRequested: false,
  }
}
