// Catch-up of one socket stream (a session's results, or one alias's events) from the client's offsets to
// the live stream, then a synchronous switch to live delivery.
//
// The replay delivers, per partition, the records in [client offset, live position), where the live
// position is read at the moment each batch is handled. When every partition has reached the live
// position, in one synchronous step (no await between the check and the switch), the socket subscribes
// to live delivery: the live stream dispatches exactly the records at or above those positions, so nothing
// is missed and nothing is sent twice, and results arrive in offset order per partition.
import { partitionKey } from '../kafka/index.ts'
import type { ConsumedRecord, PartitionReader, TopicPartitionOffset } from '../kafka/index.ts'
import type { LiveStream } from './live-stream.ts'

export interface CatchUpOptions {
  reader: PartitionReader
  live: LiveStream
  /** Next offset wanted per partition (partitions the live stream reads). */
  from: readonly TopicPartitionOffset[]
  /** Sends the record to the socket if it belongs to this stream; returns whether it sent it. Synchronous. */
  deliver(record: ConsumedRecord): boolean
  /** Records in [from, to) of a partition are gone (retention). */
  gap(topic: string, partition: number, from: bigint, to: bigint): void
  /** Subscribes the socket to live delivery. Synchronous; called at most once. */
  switchToLive(): void
  /** True once the socket closed or the stream was cancelled: the catch-up stops without switching. */
  cancelled(): boolean
  /** Waits while the socket's send buffer is full. */
  pace(): Promise<void>
  /** Bounds one fetch round, ms. */
  maxWaitMs?: number
}

export interface CatchUpResult {
  /** False when cancelled before the switch. */
  readonly switched: boolean
  readonly replayed: number
  readonly gaps: number
}

export async function catchUp(options: CatchUpOptions): Promise<CatchUpResult> {
  const { reader, live } = options
  const positions = new Map<string, TopicPartitionOffset>()
  for (const p of options.from) positions.set(partitionKey(p.topic, p.partition), p)
  let replayed = 0
  let gaps = 0
  const liveAt = (p: TopicPartitionOffset) => live.position(p.topic, p.partition) ?? p.offset

  const skipGone = async (partitions: TopicPartitionOffset[]) => {
    if (partitions.length === 0) return
    for (const earliest of await reader.offsets(partitions, 'earliest')) {
      const key = partitionKey(earliest.topic, earliest.partition)
      const current = positions.get(key)
      if (current !== undefined && current.offset < earliest.offset) {
        options.gap(earliest.topic, earliest.partition, current.offset, earliest.offset)
        gaps++
        positions.set(key, earliest)
      }
    }
  }

  await skipGone([...positions.values()].filter((p) => p.offset < liveAt(p)))
  for (;;) {
    if (options.cancelled()) return { switched: false, replayed, gaps }
    const behind = [...positions.values()].filter((p) => p.offset < liveAt(p))
    if (behind.length === 0) {
      options.switchToLive()
      return { switched: true, replayed, gaps }
    }
    const batches = await reader.fetch(behind, { maxWaitMs: options.maxWaitMs ?? 50 })
    if (options.cancelled()) return { switched: false, replayed, gaps }
    const outOfRange: TopicPartitionOffset[] = []
    for (const batch of batches) {
      const key = partitionKey(batch.topic, batch.partition)
      const current = positions.get(key)
      if (current === undefined) continue
      if (batch.outOfRange) {
        outOfRange.push(current)
        continue
      }
      const until = liveAt(current)
      for (const record of batch.records) {
        if (record.offset >= current.offset && record.offset < until && options.deliver(record)) replayed++
      }
      const next = batch.nextOffset < until ? batch.nextOffset : until
      if (next > current.offset) positions.set(key, { topic: batch.topic, partition: batch.partition, offset: next })
    }
    await skipGone(outOfRange)
    await options.pace()
  }
}
