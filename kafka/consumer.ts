import { Consumer } from '@platformatic/kafka'
import type { MessagesStream } from '@platformatic/kafka'

import { channels, publish } from '../core/diagnostics.ts'
import { WeirError } from '../core/errors.ts'
import { baseClientOptions, fromMessage, validateClientOptions, wrapKafkaError } from './convert.ts'
import type { ConsumedRecord, Isolation, KafkaClientOptions, TopicPartition, TopicPartitionOffset } from './types.ts'

export interface KafkaConsumerOptions extends KafkaClientOptions {
  groupId: string
  /** Default read_committed: records of aborted or open transactions are never returned. */
  isolation?: Isolation
  /** Commit offsets automatically every N ms. Default false: commit explicitly or in a transaction. */
  autocommitMs?: number | false
  sessionTimeoutMs?: number
  heartbeatIntervalMs?: number
  rebalanceTimeoutMs?: number
  /** Longest time a fetch waits for data, ms. */
  maxWaitMs?: number
}

export interface SubscribeOptions {
  topics: readonly string[]
  /** Where to start: the group's committed offsets (default), or the log's start or end. */
  from?: 'committed' | 'earliest' | 'latest'
  /** Where to start a partition that has no committed offset (default 'earliest'). */
  fallback?: 'earliest' | 'latest'
}

export interface RecordStream extends AsyncIterable<ConsumedRecord> {
  close(): Promise<void>
}

export interface KafkaConsumer {
  readonly groupId: string
  subscribe(options: SubscribeOptions): Promise<RecordStream>
  /** Commits `offsets` (next offset to consume) outside any transaction. */
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>
  /** Partitions currently assigned to this member. */
  assignments(): TopicPartition[]
  close(): Promise<void>
}

interface GroupHandle {
  groupId: string
  client: Consumer<Buffer, Buffer, Buffer, Buffer>
  current(): { groupId: string; generationId: number; memberId: string | null; coordinatorId: number | null }
}

const handles = new WeakMap<KafkaConsumer, GroupHandle>()

/** The group membership a transaction needs to commit offsets for this consumer (kafka/ internal). */
export function consumerGroupMetadata(consumer: KafkaConsumer): GroupHandle {
  const handle = handles.get(consumer)
  if (handle === undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'sendOffsets needs a consumer made by createConsumer')
  return handle
}

export function createConsumer(options: KafkaConsumerOptions): KafkaConsumer {
  const violations: string[] = []
  if (typeof options.groupId !== 'string' || options.groupId.length === 0) violations.push('groupId must be a non-empty string')
  if (options.isolation !== undefined && options.isolation !== 'read_committed' && options.isolation !== 'read_uncommitted') {
    violations.push("isolation must be 'read_committed' or 'read_uncommitted'")
  }
  for (const key of ['sessionTimeoutMs', 'heartbeatIntervalMs', 'rebalanceTimeoutMs', 'maxWaitMs'] as const) {
    const value = options[key]
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) violations.push(`${key} must be a positive integer`)
  }
  validateClientOptions('KafkaConsumer', options, violations)

  const client = new Consumer<Buffer, Buffer, Buffer, Buffer>({
    ...baseClientOptions(options, `weir-consumer-${options.groupId}`),
    groupId: options.groupId,
    autocommit: options.autocommitMs === undefined || options.autocommitMs === false ? false : options.autocommitMs,
    isolationLevel: options.isolation === 'read_uncommitted' ? 0 : 1,
    ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeout: options.sessionTimeoutMs }),
    ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatInterval: options.heartbeatIntervalMs }),
    ...(options.rebalanceTimeoutMs === undefined ? {} : { rebalanceTimeout: options.rebalanceTimeoutMs }),
    ...(options.maxWaitMs === undefined ? {} : { maxWaitTime: options.maxWaitMs }),
  })
  client.on('client:broker:failed', (error: unknown) => {
    publish(channels.kafkaClientError, { client: 'consumer', clientId: options.clientId ?? options.groupId, error })
  })
  let closed = false
  const streams = new Set<MessagesStream<Buffer, Buffer, Buffer, Buffer>>()

  const consumer: KafkaConsumer = {
    groupId: options.groupId,

    async subscribe(subscription) {
      if (closed) throw new WeirError('WEIR_ERR_CLOSED', 'KafkaConsumer is closed')
      if (!Array.isArray(subscription.topics) || subscription.topics.length === 0) {
        throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'subscribe: topics must be a non-empty array')
      }
      let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
      try {
        stream = await client.consume({
          topics: [...subscription.topics],
          mode: subscription.from ?? 'committed',
          fallbackMode: subscription.fallback ?? 'earliest',
        })
      } catch (error) {
        throw wrapKafkaError(error, `subscribe(${subscription.topics.join(',')})`)
      }
      streams.add(stream)
      stream.on('error', (error: unknown) => {
        publish(channels.kafkaClientError, { client: 'consumer', clientId: options.clientId ?? options.groupId, error })
      })
      return {
        async *[Symbol.asyncIterator]() {
          for await (const message of stream) yield fromMessage(message)
        },
        async close() {
          streams.delete(stream)
          await stream.close().catch(() => {})
        },
      }
    },

    async commit(offsets) {
      if (offsets.length === 0) return
      try {
        await client.commit({ offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: -1 })) })
      } catch (error) {
        throw wrapKafkaError(error, 'commit')
      }
    },

    assignments() {
      return (client.assignments ?? []).flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition })))
    },

    async close() {
      if (closed) return
      closed = true
      for (const stream of streams) await stream.close().catch(() => {})
      streams.clear()
      await client.close(true).catch(() => {})
    },
  }
  handles.set(consumer, {
    groupId: options.groupId,
    client,
    current: () => ({
      groupId: client.groupId,
      generationId: client.generationId,
      memberId: client.memberId,
      coordinatorId: client.coordinatorId,
    }),
  })
  return consumer
}
