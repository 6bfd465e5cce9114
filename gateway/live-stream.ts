// Reads every partition of the result and event topics, from their end at start, without a consumer group:
// each gateway instance sees every record, so whichever instance holds a session's socket can deliver to it.
//
// Positions are only ever changed synchronously right after a batch was dispatched, so at any moment
// `position(tp)` is exact: every record below it has been dispatched, none at or above it. Replays
// (replay.ts) rely on that to hand a socket over from replay to live delivery without gap or duplicate.
import { partitionKey } from '../kafka/index.ts'
import type { KafkaAdmin, PartitionBatch, PartitionReader, TopicPartition, TopicPartitionOffset } from '../kafka/index.ts'
import type { FrameOffset } from './protocol.ts'

export interface LiveStreamOptions {
  reader: PartitionReader
  admin: KafkaAdmin
  topics: readonly string[]
  /** Longest time one fetch waits for data (bounds shutdown time). */
  maxWaitMs: number
  /** How often partition counts are re-read; new partitions are read from their start. */
  metadataRefreshMs: number
  /** Dispatches a batch; must not await (positions move right after it returns). */
  dispatch(batch: PartitionBatch): void
  /** The stream fell behind retention: records in [from, to) were never dispatched. */
  gap(topic: string, partition: number, from: bigint, to: bigint): void
  error(error: unknown, where: string): void
}

export interface LiveStream {
  /** Reads partition counts and end offsets, then starts the fetch loop. */
  start(): Promise<void>
  /** Next offset to be dispatched, or undefined for a partition the stream does not read. */
  position(topic: string, partition: number): bigint | undefined
  positions(topics: readonly string[]): FrameOffset[]
  partitionsOf(topic: string): TopicPartition[]
  /** Records behind the high watermark, summed per topic (for metrics). */
  lag(): Map<string, bigint>
  /** ms since the epoch of the last successful fetch round. */
  lastFetchAt(): number
  stop(): Promise<void>
}

export function createLiveStream(options: LiveStreamOptions): LiveStream {
  const positions = new Map<string, TopicPartitionOffset>()
  const highWatermarks = new Map<string, bigint>()
  const counts = new Map<string, number>()
  let stopped = false
  let loop: Promise<void> | undefined
  let lastOk = 0
  let lastRefresh = 0
  let wake: (() => void) | undefined

  async function discover(initial: boolean): Promise<void> {
    const added: TopicPartition[] = []
    for (const topic of options.topics) {
      const count = await options.admin.partitionCount(topic)
      const known = counts.get(topic) ?? 0
      for (let partition = known; partition < count; partition++) added.push({ topic, partition })
      counts.set(topic, Math.max(known, count))
    }
    if (added.length === 0) return
    // At start everything before now is history; a partition added later is read from its beginning.
    for (const offset of await options.reader.offsets(added, initial ? 'latest' : 'earliest')) {
      positions.set(partitionKey(offset.topic, offset.partition), offset)
    }
  }

  async function run(): Promise<void> {
    let failures = 0
    while (!stopped) {
      try {
        if (Date.now() - lastRefresh >= options.metadataRefreshMs) {
          lastRefresh = Date.now()
          await discover(false)
        }
        const batches = await options.reader.fetch([...positions.values()], { maxWaitMs: options.maxWaitMs })
        if (stopped) return
        for (const batch of batches) {
          const key = partitionKey(batch.topic, batch.partition)
          const current = positions.get(key)
          if (current === undefined) continue
          highWatermarks.set(key, batch.highWatermark)
          if (batch.outOfRange) {
            const [earliest] = await options.reader.offsets([batch], 'earliest')
            if (stopped) return
            if (earliest !== undefined && earliest.offset > current.offset) {
              options.gap(batch.topic, batch.partition, current.offset, earliest.offset)
              positions.set(key, earliest)
            }
            continue
          }
          try {
            options.dispatch(batch)
          } catch (error) {
            options.error(error, `dispatch ${batch.topic}[${batch.partition}]`)
          }
          positions.set(key, { topic: batch.topic, partition: batch.partition, offset: batch.nextOffset })
        }
        lastOk = Date.now()
        failures = 0
      } catch (error) {
        if (stopped) return
        failures++
        options.error(error, 'fetch')
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(100 * 2 ** Math.min(failures, 5), 3000))
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        wake = undefined
      }
    }
  }

  return {
    async start() {
      await discover(true)
      lastRefresh = Date.now()
      lastOk = Date.now()
      loop = run()
    },
    position(topic, partition) {
      return positions.get(partitionKey(topic, partition))?.offset
    },
    positions(topics) {
      const wanted = new Set(topics)
      return [...positions.values()]
        .filter((p) => wanted.has(p.topic))
        .map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset.toString() }))
    },
    partitionsOf(topic) {
      return Array.from({ length: counts.get(topic) ?? 0 }, (_, partition) => ({ topic, partition }))
    },
    lag() {
      const lag = new Map<string, bigint>()
      for (const [key, position] of positions) {
        const hw = highWatermarks.get(key)
        if (hw !== undefined && hw > position.offset) lag.set(position.topic, (lag.get(position.topic) ?? 0n) + hw - position.offset)
        else if (!lag.has(position.topic)) lag.set(position.topic, 0n)
      }
      return lag
    },
    lastFetchAt: () => lastOk,
    async stop() {
      stopped = true
      wake?.()
      await loop
    },
  }
}
