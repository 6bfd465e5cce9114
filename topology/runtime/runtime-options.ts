// The runtime's options, checked at construction with every violation reported at once, and what it reports:
// its state, metrics, failing tasks and uncommitted work.
import { invalidOptions } from '../../core/errors.ts'
import { validateReplication } from '../../kafka/index.ts'
import type { KafkaConnection, ReplicationSettings } from '../../kafka/index.ts'
import type { StoreOpener } from '../../state/store-kinds.ts'
import type { Topology } from '../define.ts'
import type { ErrorPolicy } from './error-policy.ts'

/** The most records one task may have in flight (maxInFlight). */
export const MAX_IN_FLIGHT = 10_000

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
   * How long the broker lets a task's transaction stay open before it aborts it, ms (default 30,000). Longer than
   * Kafka Streams' 10 s: a broker that dies stalls the writes of every partition it replicates until the controller
   * fences it (`broker.session.timeout.ms`, 9 s), and a commit in flight then must ride that out instead of being
   * aborted and redone. A crashed worker's open transaction costs nothing: each task has its own transactional id,
   * so the new owner's producer aborts it at once.
   */
  transactionTimeoutMs?: number
  /**
   * Also commit as soon as the worker has nothing left to process (every fetched record processed), without
   * waiting for the interval (default true). At light load a result is visible one transaction after it was
   * made instead of up to an interval later; under a backlog the queues are seldom all empty, so commits stay
   * about one per interval.
   */
  commitWhenIdle?: boolean
  /**
   * Input records of one task processed at the same time (default 1: one after the other). Above 1, records of
   * different keys overlap while their handlers await I/O; records of the same key stay in order. A commit, due
   * timers and punctuations wait until the task has no record in flight (docs/topology.md, "Concurrent records").
   */
  maxInFlight?: number
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

export function validateRuntimeOptions(options: StreamRuntimeOptions): void {
  const violations: string[] = []
  if (typeof options.applicationId !== 'string' || !/^[A-Za-z0-9._-]+$/.test(options.applicationId)) {
    violations.push('applicationId must be a non-empty string of letters, digits, ., _ and -')
  }
  if (typeof options.stateDir !== 'string' || options.stateDir.length === 0) violations.push('stateDir must be a folder path')
  if (typeof options.openStore !== 'function') violations.push('openStore must be a function')
  if (options.transactionTimeoutMs !== undefined && !(Number.isInteger(options.transactionTimeoutMs) && options.transactionTimeoutMs > 0)) {
    violations.push('transactionTimeoutMs must be a positive integer')
  }
  if (options.commitIntervalMs !== undefined && !(Number.isInteger(options.commitIntervalMs) && options.commitIntervalMs > 0)) {
    violations.push('commitIntervalMs must be a positive integer')
  }
  if (options.maxInFlight !== undefined && !(Number.isInteger(options.maxInFlight) && options.maxInFlight >= 1 && options.maxInFlight <= MAX_IN_FLIGHT)) {
    violations.push(`maxInFlight must be an integer from 1 to ${MAX_IN_FLIGHT}`)
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
  const { min: backoffMin, max: backoffMax } = failureBackoff(options)
  if (!(Number.isInteger(backoffMin) && backoffMin >= 0)) violations.push('failureBackoffMs.min must be a non-negative integer')
  if (!(Number.isInteger(backoffMax) && backoffMax >= backoffMin)) violations.push('failureBackoffMs.max must be an integer >= failureBackoffMs.min')
  validateReplication(options.replication, violations)
  if (violations.length > 0) throw invalidOptions('StreamRuntime', violations)
}

/** The backoff bounds before a failed task is opened again (ms). */
export function failureBackoff(options: StreamRuntimeOptions): { min: number; max: number } {
  return { min: options.failureBackoffMs?.min ?? 100, max: options.failureBackoffMs?.max ?? 30_000 }
}
