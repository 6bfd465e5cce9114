// Where the client is in each topic partition: the next offset it wants. Sent on every reconnect (resume), and
// any frame below it is dropped, so a frame that arrives twice is delivered once.
import { partitionKey } from '../../kafka/partition-key.ts'
import type { FrameOffset } from '../protocol.ts'

export interface Cursors {
  /** Moves a partition's next offset forward (never back). */
  advance(topic: string, partition: number, next: bigint): void
  advanceAll(positions: readonly FrameOffset[]): void
  /** True (and the cursor moves) when the frame is new; false for a frame the client already has. */
  accept(frame: { topic: string; partition: number; offset: string }): boolean
  /** Forgets every partition of a topic (an events topic no subscription reads any more). */
  dropTopic(topic: string): void
  list(): FrameOffset[]
}

export function createCursors(initial: readonly FrameOffset[]): Cursors {
  const cursors = new Map<string, { topic: string; partition: number; offset: bigint }>()

  function advance(topic: string, partition: number, next: bigint): void {
    const key = partitionKey(topic, partition)
    const current = cursors.get(key)
    if (current === undefined || next > current.offset) cursors.set(key, { topic, partition, offset: next })
  }

  function advanceAll(positions: readonly FrameOffset[]): void {
    for (const p of positions) advance(p.topic, p.partition, BigInt(p.offset))
  }

  advanceAll(initial)

  return {
    advance,
    advanceAll,
    accept(frame) {
      const offset = BigInt(frame.offset)
      const current = cursors.get(partitionKey(frame.topic, frame.partition))
      if (current !== undefined && offset < current.offset) return false
      advance(frame.topic, frame.partition, offset + 1n)
      return true
    },
    dropTopic(topic) {
      for (const [key, cursor] of cursors) if (cursor.topic === topic) cursors.delete(key)
    },
    list() {
      return [...cursors.values()].map((c) => ({ topic: c.topic, partition: c.partition, offset: c.offset.toString() }))
    },
  }
}
