// Reads partitions from positions the caller owns (no stream buffer, no hidden offsets), so a caller can
// rewind after an aborted transaction or restore a changelog from a checkpoint.
//
// Aborted transactions are filtered here, the way the Java client does it. @platformatic/kafka 2.12 filters
// read_committed fetches itself, with one range per producer id: from the first offset of the last aborted
// transaction it is told about to the last ABORT marker of that producer in the response. A transactional id
// keeps its producer id across restarts, so that range is wrong both ways: earlier aborted transactions leak,
// and when an ABORT marker without data follows (a transaction that added the partition and was aborted
// before it wrote there, e.g. its worker was SIGKILLed mid-commit), every committed transaction in between is
// dropped (test/kafka/reader.test.ts). So a partition whose read_committed response names aborted
// transactions is fetched again at read_uncommitted from the same offset, and filtered here with the aborted
// list of the first response, up to where that response ended.
import { Consumer } from '@platformatic/kafka'

import { WeirError } from '../core/errors.ts'
import { baseClientOptions, stopRetryingFatalErrors, validateClientOptions, wrapKafkaError } from './convert.ts'
import type { RetryPolicy } from './convert.ts'
import type { ConsumedRecord, Isolation, KafkaClientOptions, TopicPartition, TopicPartitionOffset } from './types.ts'

const IS_TRANSACTIONAL = 1 << 4
const IS_CONTROL = 1 << 5
const OFFSET_OUT_OF_RANGE = 1

export interface PartitionReaderOptions extends KafkaClientOptions {
  isolation?: Isolation
  /** Longest time the broker holds a fetch that has no data (default 500 ms). */
  maxWaitMs?: number
  /** Bytes per partition per fetch (default 1 MiB). */
  maxBytesPerPartition?: number
}

export interface PartitionBatch {
  readonly topic: string
  readonly partition: number
  readonly records: ConsumedRecord[]
  /** Where to read next: past every batch returned, control markers included. */
  readonly nextOffset: bigint
  readonly highWatermark: bigint
  /** read_committed: offsets below this are decided (committed or aborted). */
  readonly lastStableOffset: bigint
  /** Set when the position is before the log start or after its end. */
  readonly outOfRange?: boolean
}

export interface PartitionReader {
  /** One fetch round for the given positions (partitions without data are omitted). */
  fetch(positions: readonly TopicPartitionOffset[], options?: { maxWaitMs?: number }): Promise<PartitionBatch[]>
  /** Offset of the first record (earliest) or the next record to be written (latest; LSO for read_committed). */
  offsets(partitions: readonly TopicPartition[], which: 'earliest' | 'latest'): Promise<TopicPartitionOffset[]>
  close(): Promise<void>
}

interface RawRecord {
  offsetDelta: number
  timestampDelta: bigint
  key: Buffer | null
  value: Buffer | null
  headers: Array<[Buffer | null, Buffer | null]>
}

interface RawBatch {
  firstOffset: bigint
  lastOffsetDelta: number
  firstTimestamp: bigint
  attributes: number
  producerId: bigint
  records: RawRecord[]
}

interface RawPartition {
  partitionIndex: number
  errorCode: number
  highWatermark: bigint
  lastStableOffset: bigint
  abortedTransactions?: Array<{ producerId: bigint; firstOffset: bigint }> | null
  records?: RawBatch[] | null
}

interface Refetch {
  topic: string
  topicId: string
  fetchOffset: bigint
  /** The read_committed response: its aborted transactions, stable offset and how far it reached. */
  committedView: RawPartition
}

/**
 * A fetch from one leader gives up after about a second (its partitions are left out of that round while the
 * others are read: a dead leader does not stall partitions led by live brokers); metadata and offset lookups
 * retry for 30 s, through a leader election.
 */
const READER_RETRIES: RetryPolicy = { budgetMs: (operationId) => (operationId === 'fetch' ? 1000 : 30_000), backoffMs: 100, backoffMaxMs: 1000 }

/** Partition errors that mean the cached leader is no longer the leader: the next round asks the cluster again. */
const STALE_LEADER = new Set([3, 5, 6, 9, 56, 74, 75])

export function createPartitionReader(options: PartitionReaderOptions): PartitionReader {
  validateClientOptions('PartitionReader', options)
  const isolation = options.isolation ?? 'read_committed'
  const maxBytesPerPartition = options.maxBytesPerPartition ?? 1024 * 1024
  // A group id is required by the client; this consumer never joins it.
  const client = stopRetryingFatalErrors(new Consumer<Buffer, Buffer, Buffer, Buffer>({
    ...baseClientOptions(options, 'weir-reader', READER_RETRIES),
    groupId: `weir-reader-unused-${process.pid}`,
    autocommit: false,
    isolationLevel: isolation === 'read_committed' ? 1 : 0,
    maxWaitTime: options.maxWaitMs ?? 500,
    minBytes: 1,
  }), READER_RETRIES)
  let closed = false
  const guard = () => {
    if (closed) throw new WeirError('WEIR_ERR_CLOSED', 'PartitionReader is closed')
  }

  async function metadataFor(topics: string[]) {
    client.topics.trackAll(...topics)
    try {
      return await client.metadata({ topics })
    } catch (error) {
      throw wrapKafkaError(error, `metadata(${topics.join(',')})`, { operation: 'Describe', topics })
    }
  }

  // The read_uncommitted second look at partitions whose read_committed response named aborted transactions
  // (see the top of this file). Only what the first response covered is decided here: its aborted list
  // describes that range and nothing beyond it.
  async function fetchUncommitted(node: number, partitions: readonly Refetch[]): Promise<PartitionBatch[]> {
    const byTopic = new Map<string, Array<{ partition: number; fetchOffset: bigint }>>()
    for (const p of partitions) {
      const list = byTopic.get(p.topicId) ?? []
      list.push({ partition: p.committedView.partitionIndex, fetchOffset: p.fetchOffset })
      byTopic.set(p.topicId, list)
    }
    let response: { responses: Array<{ topicId: string; partitions: RawPartition[] }> } | undefined
    try {
      response = (await client.fetch({
        node,
        isolationLevel: 0,
        maxWaitTime: 0,
        topics: [...byTopic].map(([topicId, list]) => ({
          topicId,
          partitions: list.map((p) => ({
            partition: p.partition,
            fetchOffset: p.fetchOffset,
            partitionMaxBytes: maxBytesPerPartition,
            currentLeaderEpoch: -1,
            lastFetchedEpoch: -1,
          })),
        })),
      })) as unknown as typeof response
    } catch (error) {
      response = (error as { response?: typeof response }).response
      if (response === undefined) throw wrapKafkaError(error, 'fetch')
    }
    const batches: PartitionBatch[] = []
    for (const p of partitions) {
      const view = p.committedView
      const raw = response?.responses.find((t) => t.topicId === p.topicId)?.partitions.find((q) => q.partitionIndex === view.partitionIndex)
      if (raw === undefined || raw.errorCode !== 0) continue
      const last = view.records?.at(-1)
      const covered = last === undefined ? p.fetchOffset : last.firstOffset + BigInt(last.lastOffsetDelta) + 1n
      const upTo = covered < view.lastStableOffset ? covered : view.lastStableOffset
      const merged: RawPartition = { ...view, records: raw.records ?? null }
      batches.push(decodePartition(p.topic, merged, p.fetchOffset, 'read_committed', upTo))
    }
    return batches
  }

  return {
    async fetch(positions, fetchOptions = {}) {
      guard()
      if (positions.length === 0) return []
      const topics = [...new Set(positions.map((p) => p.topic))]
      const metadata = await metadataFor(topics)
      // One request per leader.
      const byNode = new Map<number, Map<string, { topicId: string; partitions: Array<{ partition: number; fetchOffset: bigint }> }>>()
      const names = new Map<string, string>()
      let leaderless = 0
      for (const position of positions) {
        const topic = metadata.topics.get(position.topic)
        const leader = topic?.partitions[position.partition]?.leader
        if (topic === undefined || leader === undefined) {
          throw new WeirError('WEIR_ERR_KAFKA', `no leader known for ${position.topic}[${position.partition}]`)
        }
        if (leader < 0) {
          // Between leaders (an election): left out of this round, asked for again with fresh metadata.
          leaderless++
          continue
        }
        names.set(topic.id, position.topic)
        const requests = byNode.get(leader) ?? new Map()
        byNode.set(leader, requests)
        const entry = requests.get(topic.id) ?? { topicId: topic.id, partitions: [] }
        entry.partitions.push({ partition: position.partition, fetchOffset: position.offset })
        requests.set(topic.id, entry)
      }
      if (byNode.size === 0) {
        client.clearMetadata()
        throw new WeirError('WEIR_ERR_KAFKA', `no leader for ${positions.map((p) => `${p.topic}[${p.partition}]`).join(', ')} (an election is under way)`, { details: { retriable: true } })
      }
      let stale = leaderless > 0
      const rounds = [...byNode].map(async ([node, requests]) => {
        const topicsRequest = [...requests.values()].map((t) => ({
          topicId: t.topicId,
          partitions: t.partitions.map((p) => ({
            partition: p.partition,
            fetchOffset: p.fetchOffset,
            partitionMaxBytes: maxBytesPerPartition,
            currentLeaderEpoch: -1,
            lastFetchedEpoch: -1,
          })),
        }))
        let response: { responses: Array<{ topicId: string; partitions: RawPartition[] }> } | undefined
        try {
          response = (await client.fetch({
            node,
            topics: topicsRequest,
            ...(fetchOptions.maxWaitMs === undefined ? {} : { maxWaitTime: Math.max(0, Math.floor(fetchOptions.maxWaitMs)) }),
          })) as unknown as typeof response
        } catch (error) {
          // Partition-level errors come back as a rejected fetch that still carries the response.
          response = (error as { response?: typeof response }).response
          if (response === undefined) {
            stale = true
            throw wrapKafkaError(error, 'fetch', { operation: 'Read', topics })
          }
        }
        const batches: PartitionBatch[] = []
        const refetch: Refetch[] = []
        for (const topicResponse of response?.responses ?? []) {
          const topic = names.get(topicResponse.topicId) ?? topicResponse.topicId
          for (const partition of topicResponse.partitions) {
            const requested = requests.get(topicResponse.topicId)?.partitions.find((p) => p.partition === partition.partitionIndex)
            if (requested === undefined) continue
            if (partition.errorCode === OFFSET_OUT_OF_RANGE) {
              batches.push({
                topic,
                partition: partition.partitionIndex,
                records: [],
                nextOffset: requested.fetchOffset,
                highWatermark: partition.highWatermark,
                lastStableOffset: partition.lastStableOffset,
                outOfRange: true,
              })
              continue
            }
            if (STALE_LEADER.has(partition.errorCode)) stale = true
            if (partition.errorCode !== 0) continue
            if (isolation === 'read_committed' && (partition.abortedTransactions?.length ?? 0) > 0 && (partition.records?.length ?? 0) > 0) {
              refetch.push({ topic, topicId: topicResponse.topicId, fetchOffset: requested.fetchOffset, committedView: partition })
              continue
            }
            batches.push(decodePartition(topic, partition, requested.fetchOffset, isolation))
          }
        }
        if (refetch.length > 0) batches.push(...(await fetchUncommitted(node, refetch)))
        return batches
      })
      const settled = await Promise.allSettled(rounds)
      // A leader moved or died: the next round looks the leaders up again.
      if (stale) client.clearMetadata()
      const failed = settled.filter((r) => r.status === 'rejected')
      // A leader that cannot be reached leaves its partitions out of this round, as the Java consumer does; when no
      // leader answered at all (or the failure is not one a retry can fix), the fetch fails.
      const fatal = failed.find((r) => (r.reason as { details?: { retriable?: unknown } }).details?.retriable === false)
      if (fatal !== undefined || (failed.length > 0 && failed.length === settled.length)) throw (fatal ?? failed[0] as PromiseRejectedResult).reason
      return settled.flatMap((r) => (r.status === 'fulfilled' ? r.value : []))
    },

    async offsets(partitions, which) {
      guard()
      if (partitions.length === 0) return []
      const topics = [...new Set(partitions.map((p) => p.topic))]
      await metadataFor(topics)
      const byTopic: Record<string, number[]> = {}
      for (const p of partitions) (byTopic[p.topic] ??= []).push(p.partition)
      let listed: Map<string, bigint[]>
      try {
        listed = await client.listOffsets({
          topics,
          partitions: byTopic,
          timestamp: which === 'earliest' ? -2n : -1n,
          isolationLevel: isolation === 'read_committed' ? 1 : 0,
        })
      } catch (error) {
        throw wrapKafkaError(error, `listOffsets(${topics.join(',')})`, { operation: 'Describe', topics })
      }
      return partitions.map((p) => {
        const offset = listed.get(p.topic)?.[p.partition]
        if (offset === undefined) throw new WeirError('WEIR_ERR_KAFKA', `no ${which} offset for ${p.topic}[${p.partition}]`)
        return { topic: p.topic, partition: p.partition, offset }
      })
    },

    async close() {
      if (closed) return
      closed = true
      await client.close(true).catch(() => {})
    },
  }
}

/** Decodes the batches of one partition from `fetchOffset` on, stopping before `upTo` when given. */
function decodePartition(topic: string, partition: RawPartition, fetchOffset: bigint, isolation: Isolation, upTo?: bigint): PartitionBatch {
  const records: ConsumedRecord[] = []
  const aborted = [...(partition.abortedTransactions ?? [])].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1))
  const abortingProducers = new Set<bigint>()
  let nextAborted = 0
  let nextOffset = fetchOffset
  for (const batch of partition.records ?? []) {
    if (upTo !== undefined && batch.firstOffset >= upTo) break
    const lastOffset = batch.firstOffset + BigInt(batch.lastOffsetDelta)
    if (lastOffset < fetchOffset) continue
    nextOffset = lastOffset + 1n
    if (isolation === 'read_committed') {
      while (nextAborted < aborted.length && (aborted[nextAborted] as { firstOffset: bigint }).firstOffset <= lastOffset) {
        abortingProducers.add((aborted[nextAborted] as { producerId: bigint }).producerId)
        nextAborted++
      }
    }
    if (batch.attributes & IS_CONTROL) {
      // Control record key: int16 version, int16 type (0 = ABORT, 1 = COMMIT).
      if (batch.records[0]?.key?.readInt16BE(2) === 0) abortingProducers.delete(batch.producerId)
      continue
    }
    if (isolation === 'read_committed' && batch.attributes & IS_TRANSACTIONAL && abortingProducers.has(batch.producerId)) continue
    for (const record of batch.records) {
      const offset = batch.firstOffset + BigInt(record.offsetDelta)
      if (offset < fetchOffset) continue
      const headers = new Map<string, Buffer>()
      for (const [name, value] of record.headers) {
        if (name !== null) headers.set(name.toString('utf8'), value ?? Buffer.alloc(0))
      }
      records.push({
        topic,
        partition: partition.partitionIndex,
        offset,
        timestamp: batch.firstTimestamp + record.timestampDelta,
        key: record.key ?? undefined,
        value: record.value ?? undefined,
        headers,
      })
    }
  }
  return {
    topic,
    partition: partition.partitionIndex,
    records,
    nextOffset,
    highWatermark: partition.highWatermark,
    lastStableOffset: partition.lastStableOffset,
  }
}
