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

// Measured as a ratio on the same machine, so a slow CI host does not matter: 5x the keys costs ~6x the time
// here; a flat sorted array (one splice per write) costs ~17x and needs ~5 s for the 100,000-key round.
test('memory store: writes, scans and deletes scale to 100,000 keys', async () => {
  const key = (i: number) => Buffer.from(`state:${(Math.imul(i + 1, 2654435761) >>> 0).toString(16).padStart(8, '0')}:${i}`)
  const value = Buffer.alloc(100, 1)
  async function round(n: number): Promise<number> {
    const store = createMemoryStore()
    const started = performance.now()
    // One put at a time in hash order: every insert lands somewhere in the middle.
    for (let i = 0; i < n; i++) await store.put(key(i), value)
    let scanned = 0
    for (let i = 0; i < n / 100; i++) {
      for await (const _ of store.range({ gte: key(i * 97), limit: 100 })) scanned++
      await store.put(key(i), value) // a write after each scan: the copy-on-write path
    }
    for (let i = 0; i < n; i += 2) await store.delete(key(i))
    const ms = performance.now() - started
    assert.equal(await store.approximateCount(), n / 2)
    assert.ok(scanned > n * 0.9, `scanned ${scanned}`)
    await store.close()
    return ms
  }
  await round(5_000) // warm up the JIT
  const small = await round(20_000)
  const large = await round(100_000)
  assert.ok(large / small < 10, `20,000 keys: ${small.toFixed(0)} ms, 100,000 keys: ${large.toFixed(0)} ms (${(large / small).toFixed(1)}x)`)
})
