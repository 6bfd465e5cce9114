import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createMemoryStore } from '../../state/memory-store.ts'
import { conformance } from './kv-store-conformance.ts'

let locations = 0
conformance('memory store', {
  persistent: false,
  location: async () => `memory-${locations++}`,
  open: async () => createMemoryStore(),
})

// The claim is about work, not time: a write moves at most one chunk's items, a write after a scan copies the
// chunk list and one chunk, so 5x the keys costs about 5x the element moves (a flat sorted array, one splice
// per write and a full copy per snapshot, costs about 25x). Element moves are counted by Array.prototype.splice
// and slice, the only ways the index moves items; they are deterministic where a duration ratio is not (a
// loaded machine, a GC pause). The durations are printed as a diagnostic.
test('memory store: writes, scans and deletes scale to 100,000 keys', async (t) => {
  const key = (i: number) => Buffer.from(`state:${(Math.imul(i + 1, 2654435761) >>> 0).toString(16).padStart(8, '0')}:${i}`)
  const value = Buffer.alloc(100, 1)
  async function round(n: number): Promise<{ moves: number; ms: number }> {
    const store = createMemoryStore()
    const started = performance.now()
    const moves = await countingElementMoves(async () => {
      // One put at a time in hash order: every insert lands somewhere in the middle.
      for (let i = 0; i < n; i++) await store.put(key(i), value)
      let scanned = 0
      for (let i = 0; i < n / 100; i++) {
        for await (const _ of store.range({ gte: key(i * 97), limit: 100 })) scanned++
        await store.put(key(i), value) // a write after each scan: the copy-on-write path
      }
      for (let i = 0; i < n; i += 2) await store.delete(key(i))
      assert.ok(scanned > n * 0.9, `scanned ${scanned}`)
    })
    const ms = performance.now() - started
    assert.equal(await store.approximateCount(), n / 2)
    // Every other key is left, in order.
    let previous: Buffer | undefined
    let left = 0
    for await (const [k] of store.range()) {
      if (previous !== undefined) assert.ok(Buffer.compare(previous, k) < 0, 'keys in byte order')
      previous = k
      left++
    }
    assert.equal(left, n / 2)
    await store.close()
    return { moves, ms }
  }
  const small = await round(20_000)
  const large = await round(100_000)
  const ratio = large.moves / small.moves
  t.diagnostic(`20,000 keys: ${small.moves} element moves, ${small.ms.toFixed(0)} ms; 100,000 keys: ${large.moves} moves, ${large.ms.toFixed(0)} ms`)
  assert.ok(small.moves > 0, 'the index moves elements through splice and slice (else this test measures nothing)')
  assert.ok(ratio < 10, `5x the keys cost ${ratio.toFixed(1)}x the element moves (${small.moves} -> ${large.moves})`)
})

/**
 * Runs `work` while counting array elements shifted by splice and copied by slice. Only microtasks run while
 * the store is used (no I/O, no timers), so nothing else in the process adds to the count.
 */
async function countingElementMoves(work: () => Promise<void>): Promise<number> {
  const { splice, slice } = Array.prototype
  let moves = 0
  const at = (index: number | undefined, length: number) => {
    const i = Math.trunc(Number(index ?? 0)) || 0
    return i < 0 ? Math.max(length + i, 0) : Math.min(i, length)
  }
  Array.prototype.splice = function (this: unknown[], ...args: unknown[]) {
    if (args.length > 0) moves += this.length - at(args[0] as number, this.length)
    return (splice as (...a: unknown[]) => unknown[]).apply(this, args)
  } as typeof splice
  Array.prototype.slice = function (this: unknown[], ...args: unknown[]) {
    const copied = (slice as (...a: unknown[]) => unknown[]).apply(this, args)
    moves += copied.length
    return copied
  } as typeof slice
  try {
    await work()
  } finally {
    Array.prototype.splice = splice
    Array.prototype.slice = slice
  }
  return moves
}
