// weir's own view of Kafka records and clients. Nothing outside kafka/ sees @platformatic/kafka types.
import type { KafkaConnection } from './connection.ts'

export interface KafkaClientOptions {
  /** host:port list. */
  brokers: readonly string[]
  clientId?: string
  /** Per-request timeout of the client, ms. */
  requestTimeoutMs?: number
  /** TLS, SASL and producer compression (kafka/connection.ts); default plaintext, no authentication. */
  connection?: KafkaConnection
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
  /** Replicas per partition; default -1: the broker's default.replication.factor (as Kafka Streams since 3.0). */
  readonly replicationFactor?: number
  /** Topic configs, e.g. { 'cleanup.policy': 'compact' }. */
  readonly configs?: Readonly<Record<string, string>>
}

/** An allow ACL, in the terms of Kafka's kafka-acls tool. */
export interface AclBinding {
  readonly principal: string
  readonly resourceType: 'Topic' | 'Group' | 'Cluster' | 'TransactionalId'
  /** The resource's name, or its prefix when `pattern` is 'prefixed' ('kafka-cluster' for the cluster). */
  readonly resourceName: string
  readonly pattern?: 'literal' | 'prefixed'
  readonly operation: 'All' | 'Read' | 'Write' | 'Create' | 'Delete' | 'Alter' | 'Describe' | 'DescribeConfigs' | 'AlterConfigs' | 'IdempotentWrite'
  readonly host?: string
}
