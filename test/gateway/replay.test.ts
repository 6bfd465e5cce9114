// The replay-to-live handover as pure logic, with an in-memory log and live stream: the invariants the
// real-broker tests rely on, including the cases a broker cannot produce on demand (retention gaps).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import type { ConsumedRecord, PartitionBatch, PartitionReader, TopicPartitionOffset } from '../../kafka/index.ts'
import type { LiveStream } from '../../gateway/live-stream.ts'
import { catchUp } from '../../gateway/replay.ts'

const TOPIC = 'results'

/** One partition log with offsets [logStart, end), and a live stream whose position the test moves. */
function world(options: { logStart: number; end: number; live: number; batch: number; onFetch?: () => void }) {
  const livePosition = { value: BigInt(options.live) }
  const record = (offset: bigint): ConsumedRecord => ({
    topic: TOPIC,
    partition: 0,
    offset,
    timestamp: 0n,
    key: undefined,
    value: Buffer.from(String(offset)),
    headers: new Map(),
  })
  const reader: PartitionReader = {
    async fetch(positions) {
      options.onFetch?.()
      return positions.map((p): PartitionBatch => {
        if (p.offset < BigInt(options.logStart)) {
          return { topic: TOPIC, partition: 0, records: [], nextOffset: p.offset, highWatermark: 0n, lastStableOffset: 0n, outOfRange: true }
        }
        const records: ConsumedRecord[] = []
        for (let o = p.offset; o < BigInt(options.end) && records.length < options.batch; o++) records.push(record(o))
        const nextOffset = records.length > 0 ? (records.at(-1) as ConsumedRecord).offset + 1n : p.offset
        return { topic: TOPIC, partition: 0, records, nextOffset, highWatermark: BigInt(options.end), lastStableOffset: BigInt(options.end) }
      })
    },
    async offsets(partitions, which) {
      return partitions.map((p) => ({ ...p, offset: BigInt(which === 'earliest' ? options.logStart : options.end) }))
    },
    async close() {},
  }
  const live = { position: () => livePosition.value } as unknown as LiveStream
  return { reader, live, livePosition }
}

async function run(w: ReturnType<typeof world>, from: number, extra: { cancelAfter?: number } = {}) {
  const delivered: bigint[] = []
  const gaps: Array<[bigint, bigint]> = []
  let switchedAt: bigint | undefined
  const result = await catchUp({
    reader: w.reader,
    live: w.live,
    from: [{ topic: TOPIC, partition: 0, offset: BigInt(from) } satisfies TopicPartitionOffset],
    deliver(record) {
      delivered.push(record.offset)
      return true
    },
    gap: (_topic, _partition, gapFrom, gapTo) => void gaps.push([gapFrom, gapTo]),
    switchToLive() {
      switchedAt = w.livePosition.value
    },
    cancelled: () => extra.cancelAfter !== undefined && delivered.length >= extra.cancelAfter,
    pace: async () => {},
  })
  return { delivered, gaps, switchedAt, result }
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => BigInt(from + i))

test('replays [client offset, live position) and switches exactly at the live position', async () => {
  const w = world({ logStart: 0, end: 100, live: 60, batch: 7 })
  const { delivered, switchedAt, result } = await run(w, 20)
  assert.deepEqual(delivered, range(20, 60))
  assert.equal(switchedAt, 60n)
  assert.deepEqual(result, { switched: true, replayed: 40, gaps: 0 })
})

test('a live stream that moves on during the replay is followed until the replay catches it', async () => {
  let fetches = 0
  const w = world({ logStart: 0, end: 200, live: 30, batch: 10, onFetch: () => void fetches++ })
  // Live delivery keeps advancing while the replay reads: 5 records per fetch round.
  const original = w.reader.fetch.bind(w.reader)
  w.reader.fetch = async (positions, options) => {
    const batches = await original(positions, options)
    if (w.livePosition.value < 80n) w.livePosition.value += 5n
    return batches
  }
  const { delivered, switchedAt } = await run(w, 0)
  assert.equal(switchedAt, w.livePosition.value)
  // Everything below the switch point exactly once, nothing at or above it (the live stream sends those).
  assert.deepEqual(delivered, range(0, Number(switchedAt)))
  assert.ok(fetches > 3)
})

test('offsets older than the log start become a gap, then the replay continues from the log start', async () => {
  const w = world({ logStart: 50, end: 100, live: 100, batch: 20 })
  const { delivered, gaps, switchedAt } = await run(w, 10)
  assert.deepEqual(gaps, [[10n, 50n]])
  assert.deepEqual(delivered, range(50, 100))
  assert.equal(switchedAt, 100n)
})

test('a client ahead of the live position switches at once; a cancelled replay never switches', async () => {
  const ahead = await run(world({ logStart: 0, end: 10, live: 10, batch: 5 }), 12)
  assert.deepEqual(ahead.delivered, [])
  assert.equal(ahead.switchedAt, 10n)
  const cancelled = await run(world({ logStart: 0, end: 100, live: 100, batch: 5 }), 0, { cancelAfter: 5 })
  assert.equal(cancelled.switchedAt, undefined)
  assert.equal(cancelled.result.switched, false)
})
