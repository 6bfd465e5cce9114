// weir's own view of Kafka records and clients. Nothing outside kafka/ sees @platformatic/kafka types.

export interface KafkaClientOptions {
  /** host:port list. */
  brokers: readonly string[]
  clientId?: string
  /** Per-request timeout of the client, ms. */
  requestTimeoutMs?: number
}

export type Isolation = 'read_committed' | 'read_uncommitted'

export interface TopicPartition {
  readonly topic: string
  readonly partition: number
}

export interface TopicPartitionOffset extends TopicPartition {
  /** For commits: the next offset to consume (last processed + 1). */
  readonly offset: bigint
}

/** A record read from Kafka. Buffers are owned by the caller. */
export interface ConsumedRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly timestamp: bigint
  readonly key: Buffer | undefined
  readonly value: Buffer | undefined
  readonly headers: ReadonlyMap<string, Buffer>
}

/** A record to produce. Strings are written as UTF-8. */
export interface OutgoingRecord {
  readonly topic: string
  readonly partition?: number
  readonly key?: Buffer | string | null
  readonly value: Buffer | string | null
  readonly headers?: Readonly<Record<string, Buffer | string>>
  readonly timestamp?: bigint
}

export interface ProducedRecordMetadata {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
}

export interface TopicSpec {
  readonly name: string
  readonly partitions?: number
  readonly replicationFactor?: number
  /** Topic configs, e.g. { 'cleanup.policy': 'compact' }. */
  readonly configs?: Readonly<Record<string, string>>
}
