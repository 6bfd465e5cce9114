// The processor API: as small as Kafka Streams' processor/api. Everything else is runtime internals.
import type { StreamRecord } from './record.ts'

export interface Processor<KIn = unknown, VIn = unknown> {
  /** Called once per task before the first record; keep the context for later calls. */
  init?(context: ProcessorContext): void | Promise<void>
  process(record: StreamRecord<KIn, VIn>): void | Promise<void>
  /** A durable timer this processor set came due (see ProcessorContext.timers). */
  onTimer?(timer: FiredTimer): void | Promise<void>
  close?(): void | Promise<void>
}

export type ProcessorFactory<KIn = unknown, VIn = unknown> = () => Processor<KIn, VIn>

export interface RecordMetadata {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly timestamp: number
  readonly headers: ReadonlyMap<string, Buffer>
}

export interface Cancellable {
  cancel(): void
}

export interface FiredTimer<P = unknown> {
  readonly key: string
  /** When it was due, ms since the epoch. */
  readonly at: number
  readonly payload: P
  /** The wall-clock time it fired. */
  readonly firedAt: number
}

/**
 * Durable per-key timers of one processor: kept in a RocksDB-backed store with a changelog, fired by
 * wall-clock time, and deleted in the same transaction as whatever `onTimer` produces, so each fires once.
 * Setting a key that exists replaces it.
 */
export interface TimerService {
  set(key: string, at: number, payload?: unknown): Promise<void>
  /** Resolves true when a pending timer was removed. */
  cancel(key: string): Promise<boolean>
  get(key: string): Promise<{ at: number; payload: unknown } | undefined>
}

export interface KeyValueEntry<K, V> {
  readonly key: K
  readonly value: V
}

export interface RangeQuery<K> {
  gte?: K
  gt?: K
  lte?: K
  lt?: K
  reverse?: boolean
  limit?: number
}

/**
 * A state store as a processor sees it. Writes become visible to later reads at once and are committed
 * (to the local store and its changelog topic) together with the task's outputs and input offsets.
 */
export interface KeyValueStore<K = string, V = unknown> {
  get(key: K): Promise<V | undefined>
  put(key: K, value: V): Promise<void>
  delete(key: K): Promise<void>
  /** Entries in key byte order. */
  range(query?: RangeQuery<K>): AsyncIterable<KeyValueEntry<K, V>>
  /** Entries whose serialized key starts with `prefix`'s serialized bytes. */
  prefix(prefix: K): AsyncIterable<KeyValueEntry<K, V>>
  approximateCount(): Promise<number>
}

export interface ProcessorContext {
  readonly applicationId: string
  /** The task: one per input partition (co-partitioned sources share it). */
  readonly taskId: string
  readonly partition: number
  /** Name of the processor this context belongs to. */
  readonly processorName: string
  /** Sends a record to every child, or to the named child only. */
  forward(record: StreamRecord, child?: string): Promise<void>
  store<K = string, V = unknown>(name: string): KeyValueStore<K, V>
  /** Non-durable periodic callback, by wall-clock or by stream time (record timestamps). */
  schedule(intervalMs: number, type: 'wall-clock' | 'stream-time', callback: (timestamp: number) => void | Promise<void>): Cancellable
  readonly timers: TimerService
  /** Where the record being processed came from; undefined inside onTimer and punctuations. */
  recordMetadata(): RecordMetadata | undefined
  /** Asks the runtime to commit as soon as possible (it still commits on its own interval). */
  commit(): void
  /** Wall-clock time as the runtime sees it (the test driver controls it). */
  now(): number
}
