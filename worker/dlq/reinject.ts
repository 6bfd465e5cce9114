// `weir dlq reinject` as a function: re-produces chosen dead letters to their origin topic and partition (or
// another topic) with their original key, value and headers.
//
// Re-injection is exactly-once per dead letter: each batch of re-produced records and the DLQ position of the
// consumer group `weir-dlq-reinject.<dlq topic>` (override with groupId) commit in one Kafka transaction, so a
// second run starts where the first stopped and re-injects nothing twice; a crash aborts the open batch and
// the next run redoes it. The position moves past every dead letter examined, selected or not: letters left
// out by `code` are reached again with `fromOffset`.
import { invalidOptions } from '../../core/errors.ts'
import type { WeirError } from '../../core/errors.ts'
import { committedOffsets, createGroupMember, createProducer } from '../../kafka/index.ts'
import type { ConsumedRecord, OutgoingRecord, TopicPartitionOffset } from '../../kafka/index.ts'
import { describeDeadLetter, truncatedError } from './letter.ts'
import type { DeadLetter } from './letter.ts'
import { readToEnd } from './read.ts'
import type { ReadOptions } from './read.ts'

export const REINJECTED_FROM_HEADER = 'weir.reinjected-from'

export interface ReinjectOptions extends ReadOptions {
  /** 'origin' (default): the topic and partition each dead letter came from; or a topic name. */
  to?: string
  code?: string
  dryRun?: boolean
  /** Consumer group whose committed position marks what was examined (default `weir-dlq-reinject.<topic>`). */
  groupId?: string
  /** Records per transaction (default 500). */
  batchSize?: number
  onProgress?: (progress: ReinjectResult) => void
}

export interface ReinjectResult {
  examined: number
  reinjected: number
  /** Filtered out by `code`. */
  skipped: number
  /** Selected but without a weir.origin.topic header while `to` is 'origin': left in place, reported. */
  unroutable: Array<{ partition: number; offset: bigint }>
  /** Selected but truncated (weir.truncated): refused, left in place, each with its WEIR_ERR_DEAD_LETTER_TRUNCATED error. */
  refused: Array<{ partition: number; offset: bigint; error: WeirError }>
  /** The records produced (or, in a dry run, that would be). */
  records: Array<{ from: { partition: number; offset: bigint }; to: OutgoingRecord }>
}

export function reinjectRecord(letter: DeadLetter, dlqTopic: string, to: string): OutgoingRecord | undefined {
  const { record } = letter
  const headers: Record<string, Buffer | string> = { ...letter.originalHeaders, [REINJECTED_FROM_HEADER]: `${dlqTopic}/${record.partition}/${record.offset}` }
  if (to !== 'origin') return { topic: to, key: record.key ?? null, value: record.value ?? null, headers }
  if (letter.origin.topic === undefined) return undefined
  return {
    topic: letter.origin.topic,
    ...(letter.origin.partition === undefined || letter.origin.partition < 0 ? {} : { partition: letter.origin.partition }),
    key: record.key ?? null,
    value: record.value ?? null,
    headers,
  }
}

export async function reinjectDeadLetters(options: ReinjectOptions): Promise<ReinjectResult> {
  const violations: string[] = []
  if (typeof options.topic !== 'string' || options.topic.length === 0) violations.push('topic must be a non-empty string')
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) violations.push('brokers must be a non-empty array')
  const batchSize = options.batchSize ?? 500
  if (!(Number.isInteger(batchSize) && batchSize > 0)) violations.push('batchSize must be a positive integer')
  const to = options.to ?? 'origin'
  if (to === options.topic) violations.push('re-injecting a dead-letter topic into itself would loop')
  if (violations.length > 0) throw invalidOptions('dlq reinject', violations)
  const groupId = options.groupId ?? `weir-dlq-reinject.${options.topic}`
  const result: ReinjectResult = { examined: 0, reinjected: 0, skipped: 0, unroutable: [], refused: [], records: [] }

  const committedStart = async (count: number) => {
    const partitions = Array.from({ length: count }, (_, partition) => ({ topic: options.topic, partition }))
    const committed = await committedOffsets({ brokers: options.brokers, connection: options.connection }, groupId, partitions)
    return new Map(committed.map((c) => [c.partition, c.offset]))
  }

  const select = (records: readonly ConsumedRecord[]) => {
    const out: Array<{ from: { partition: number; offset: bigint }; to: OutgoingRecord }> = []
    for (const record of records) {
      result.examined++
      const letter = describeDeadLetter(record)
      if (options.code !== undefined && letter.code !== options.code) {
        result.skipped++
        continue
      }
      if (letter.truncated.length > 0) {
        result.refused.push({ partition: record.partition, offset: record.offset, error: truncatedError(letter, options.topic) })
        continue
      }
      const outgoing = reinjectRecord(letter, options.topic, to)
      if (outgoing === undefined) result.unroutable.push({ partition: record.partition, offset: record.offset })
      else out.push({ from: { partition: record.partition, offset: record.offset }, to: outgoing })
    }
    return out
  }

  if (options.dryRun === true) {
    await readToEnd(options, committedStart, async (_partition, records) => {
      result.records.push(...select(records))
      return true
    })
    result.reinjected = 0
    return result
  }

  // The group member gives the offset commit a generation, so a second reinject running at the same time
  // (same transactional id) fences this one instead of both committing.
  const member = createGroupMember({ brokers: options.brokers, connection: options.connection, groupId, topics: [options.topic], assignment: 'round-robin', sessionTimeoutMs: 10_000 })
  const producer = createProducer({ brokers: options.brokers, connection: options.connection, transactionalId: groupId, clientId: `${groupId}-producer` })
  try {
    await member.join()
    let pending: Array<{ from: { partition: number; offset: bigint }; to: OutgoingRecord }> = []
    const positions = new Map<number, bigint>()
    let dirty = false
    const flush = async () => {
      if (!dirty) return
      const tx = await producer.beginTransaction()
      try {
        await tx.send(pending.map((p) => p.to))
        const offsets: TopicPartitionOffset[] = [...positions].map(([partition, offset]) => ({ topic: options.topic, partition, offset }))
        await tx.sendOffsets(member, offsets)
        await tx.commit()
      } catch (error) {
        await tx.abort().catch(() => {})
        throw error
      }
      result.reinjected += pending.length
      result.records.push(...pending)
      pending = []
      dirty = false
      options.onProgress?.({ ...result })
    }
    await readToEnd(options, committedStart, async (partition, records, nextOffset) => {
      pending.push(...select(records))
      positions.set(partition, nextOffset)
      dirty = true
      if (pending.length >= batchSize) await flush()
      return true
    })
    await flush()
    return result
  } finally {
    await producer.close().catch(() => {})
    await member.leave().catch(() => {})
    await member.close().catch(() => {})
  }
}
