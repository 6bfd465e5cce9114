// A group consumer as an async iterable: group membership (group.ts) plus our own fetch loop (reader.ts),
// so read_committed really means committed (see reader.ts) and positions are never hidden in a buffer.
import { Admin } from '@platformatic/kafka'

import { WeirError } from '../core/errors.ts'
import { baseClientOptions, stopRetryingFatalErrors, validateClientOptions, wrapKafkaError } from './convert.ts'
import { createGroupMember, groupInternals, registerGroupInternals } from './group.ts'
import type { GroupMember } from './group.ts'
import { createPartitionReader } from './reader.ts'
import type { PartitionReader } from './reader.ts'
import type { ConsumedRecord, Isolation, KafkaClientOptions, TopicPartition, TopicPartitionOffset } from './types.ts'

export interface KafkaConsumerOptions extends KafkaClientOptions {
  groupId: string
  /** Default read_committed: records of aborted or open transactions are never returned. */
  isolation?: Isolation
  sessionTimeoutMs?: number
  heartbeatIntervalMs?: number
  rebalanceTimeoutMs?: number
  /** Longest time a fetch waits for data, ms (default 500). */
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
  /** Joins the group for `topics` and reads them; one subscription per consumer. */
  subscribe(options: SubscribeOptions): Promise<RecordStream>
  /** Commits `offsets` (next offset to consume) outside any transaction. */
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>
  /** Partitions currently assigned to this member. */
  assignments(): TopicPartition[]
  close(): Promise<void>
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

  let member: GroupMember | undefined
  let reader: PartitionReader | undefined
  let closed = false
  let stopStream: (() => Promise<void>) | undefined

  const consumer: KafkaConsumer = {
    groupId: options.groupId,

    async subscribe(subscription) {
      if (closed) throw new WeirError('WEIR_ERR_CLOSED', 'KafkaConsumer is closed')
      if (member !== undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'subscribe: this consumer already has a subscription')
      if (!Array.isArray(subscription.topics) || subscription.topics.length === 0) {
        throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'subscribe: topics must be a non-empty array')
      }
      const groupMember = createGroupMember({
        ...options,
        topics: subscription.topics,
        assignment: 'round-robin',
      })
      member = groupMember
      const partitionReader = createPartitionReader({ ...options, isolation: options.isolation ?? 'read_committed' })
      reader = partitionReader
      registerGroupInternals(consumer, groupInternals(groupMember))
      const positions = new Map<string, TopicPartitionOffset>()
      let assignment: TopicPartition[] = []
      let assignmentChanged = true
      groupMember.onAssignment((partitions) => {
        assignment = partitions
        assignmentChanged = true
      })
      assignment = await groupMember.join()
      let stopped = false
      stopStream = async () => {
        stopped = true
      }

      async function refreshPositions(): Promise<void> {
        assignmentChanged = false
        const wanted = new Set(assignment.map(keyOf))
        for (const key of positions.keys()) if (!wanted.has(key)) positions.delete(key)
        const missing = assignment.filter((p) => !positions.has(keyOf(p)))
        if (missing.length === 0) return
        const from = subscription.from ?? 'committed'
        const start = new Map<string, bigint>()
        if (from === 'committed') {
          for (const c of await committedOffsets(options, groupMember.groupId, missing)) start.set(keyOf(c), c.offset)
        }
        const rest = missing.filter((p) => !start.has(keyOf(p)))
        const which = from === 'committed' ? (subscription.fallback ?? 'earliest') : from
        for (const o of await partitionReader.offsets(rest, which)) start.set(keyOf(o), o.offset)
        for (const p of missing) positions.set(keyOf(p), { ...p, offset: start.get(keyOf(p)) ?? 0n })
      }

      return {
        async *[Symbol.asyncIterator]() {
          while (!stopped && !closed) {
            if (assignmentChanged) await refreshPositions()
            if (positions.size === 0) {
              await new Promise((r) => setTimeout(r, 100))
              continue
            }
            const batches = await partitionReader.fetch([...positions.values()])
            if (stopped || closed) return
            for (const batch of batches) {
              const key = keyOf(batch)
              if (!positions.has(key)) continue
              if (batch.outOfRange) {
                const fallback = subscription.fallback ?? 'earliest'
                const [reset] = await partitionReader.offsets([batch], fallback)
                if (reset !== undefined) positions.set(key, reset)
                continue
              }
              positions.set(key, { topic: batch.topic, partition: batch.partition, offset: batch.nextOffset })
              for (const record of batch.records) {
                yield record
                if (stopped || closed) return
              }
            }
          }
        },
        async close() {
          stopped = true
        },
      }
    },

    async commit(offsets) {
      if (offsets.length === 0) return
      if (member === undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'commit needs a subscription')
      try {
        await groupInternals(member).client.commit({
          offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: -1 })),
        })
      } catch (error) {
        throw wrapKafkaError(error, 'commit')
      }
    },

    assignments() {
      return member?.assignments() ?? []
    },

    async close() {
      if (closed) return
      closed = true
      await stopStream?.()
      await reader?.close()
      await member?.leave()
      await member?.close()
    },
  }
  return consumer
}

function keyOf(p: TopicPartition): string {
  return `${p.topic}\u0000${p.partition}`
}

/**
 * Committed offsets with requireStable, so an offset inside a transaction that is still open is never read
 * as the starting point (the read waits until that transaction is decided). Partitions without a commit
 * are omitted.
 */
export async function committedOffsets(
  options: KafkaClientOptions,
  groupId: string,
  partitions: readonly TopicPartition[],
): Promise<TopicPartitionOffset[]> {
  if (partitions.length === 0) return []
  const admin = stopRetryingFatalErrors(new Admin({ ...baseClientOptions(options, `weir-offsets-${groupId}`) }))
  try {
    const byTopic = new Map<string, number[]>()
    for (const p of partitions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition])
    const groups = await admin.listConsumerGroupOffsets({
      groups: [{ groupId, topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })) }],
      requireStable: true,
    })
    const result: TopicPartitionOffset[] = []
    for (const group of groups) {
      for (const topic of group.topics) {
        for (const p of topic.partitions) {
          if (p.committedOffset >= 0n) result.push({ topic: topic.name, partition: p.partitionIndex, offset: p.committedOffset })
        }
      }
    }
    return result
  } catch (error) {
    throw wrapKafkaError(error, `committed offsets of ${groupId}`, { operation: 'Describe', group: groupId, topics: [...new Set(partitions.map((p) => p.topic))] })
  } finally {
    await admin.close().catch(() => {})
  }
}
