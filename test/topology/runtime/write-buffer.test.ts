// The write buffer's merged view (stage over pending over sealed over the committed store) against a plain
// model, under random writes, deletes, stage commits and discards, seals, flushes and range queries.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createMemoryStore } from '../../../state/memory-store.ts'
import { WriteBuffer } from '../../../topology/runtime/write-buffer.ts'

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const key = (n: number) => Buffer.from(`k${String(n).padStart(3, '0')}`)

test('range, get, stage, seal and flush agree with a model of committed, sealed, pending and staged writes', async () => {
  const random = rng(42)
  const base = createMemoryStore()
  await base.open()
  const buffer = new WriteBuffer(base)
  let committed = new Map<string, string>()
  let sealed: Map<string, string | null> | undefined
  let pending = new Map<string, string | null>()
  let stage: Map<string, string | null> | undefined
  const apply = (into: Map<string, string>, layers: Array<Map<string, string | null> | undefined>) => {
    const merged = new Map(into)
    for (const layer of layers) {
      for (const [k, v] of layer ?? []) {
        if (v === null) merged.delete(k)
        else merged.set(k, v)
      }
    }
    return merged
  }
  const checkCommitted = async (step: number) => {
    // Deletes that left no tombstone (keys the committed store did not hold) leave it exactly as the model.
    const stored: Array<[string, string]> = []
    for await (const [bk, bv] of base.range({})) stored.push([bk.toString(), bv.toString()])
    assert.deepEqual(stored, [...committed].sort(([x], [y]) => (x < y ? -1 : 1)), `committed store at step ${step}`)
  }
  const view = () => {
    const merged = new Map(committed)
    for (const layer of [sealed ?? new Map<string, string | null>(), pending, stage ?? new Map<string, string | null>()]) {
      for (const [k, v] of layer) {
        if (v === null) merged.delete(k)
        else merged.set(k, v)
      }
    }
    return merged
  }
  for (let step = 0; step < 3000; step++) {
    const r = random()
    const k = key(Math.floor(random() * 200))
    if (r < 0.35) {
      const value = `v${step}`
      buffer.put(k, Buffer.from(value))
      ;(stage ?? pending).set(k.toString(), value)
    } else if (r < 0.5) {
      buffer.delete(k)
      ;(stage ?? pending).set(k.toString(), null)
    } else if (r < 0.55 && stage === undefined) {
      buffer.beginStage()
      stage = new Map()
    } else if (r < 0.6 && stage !== undefined) {
      buffer.commitStage()
      for (const [sk, v] of stage) pending.set(sk, v)
      stage = undefined
    } else if (r < 0.63 && stage !== undefined) {
      buffer.discardStage()
      stage = undefined
    } else if (r < 0.64 && stage === undefined && sealed === undefined) {
      await buffer.flushToBase()
      committed = apply(committed, [pending])
      pending = new Map()
      await checkCommitted(step)
    } else if (r < 0.66 && stage === undefined && sealed === undefined) {
      // A commit starts: what it carries is exactly the pending layer.
      const carried = buffer.seal().map((op) => [op.key.toString(), op.type === 'put' ? op.value.toString() : null])
      sealed = pending
      pending = new Map()
      assert.deepEqual(apply(committed, [new Map(carried as Array<[string, string | null]>)]), apply(committed, [sealed]), `sealed operations at step ${step}`)
    } else if (r < 0.68 && sealed !== undefined) {
      // The commit succeeded (possibly in the middle of a record's stage: the commit runs beside processing).
      await buffer.flushSealed()
      committed = apply(committed, [sealed])
      sealed = undefined
      await checkCommitted(step)
    } else if (r < 0.8) {
      assert.equal((await buffer.get(k, random() < 0.5))?.toString(), view().get(k.toString()), `get ${k} at step ${step}`)
    } else {
      const a = key(Math.floor(random() * 200))
      const b = key(Math.floor(random() * 200))
      const [lo, hi] = Buffer.compare(a, b) <= 0 ? [a, b] : [b, a]
      const reverse = random() < 0.5
      const limit = random() < 0.5 ? Math.floor(random() * 20) + 1 : undefined
      const inclusive = random() < 0.5
      const range = { ...(inclusive ? { gte: lo, lte: hi } : { gt: lo, lt: hi }), reverse, ...(limit === undefined ? {} : { limit }) }
      const got: string[] = []
      for await (const [rk, rv] of buffer.range(range)) got.push(`${rk}=${rv}`)
      let expected = [...view()]
        .filter(([mk]) => (inclusive ? mk >= lo.toString() && mk <= hi.toString() : mk > lo.toString() && mk < hi.toString()))
        .sort(([x], [y]) => (x < y ? -1 : 1))
        .map(([mk, mv]) => `${mk}=${mv}`)
      if (reverse) expected.reverse()
      if (limit !== undefined) expected = expected.slice(0, limit)
      assert.deepEqual(got, expected, `range at step ${step}`)
    }
  }
  await base.close()
})

test('an empty value is a value, not a deletion', async () => {
  const base = createMemoryStore()
  await base.open()
  const buffer = new WriteBuffer(base)
  buffer.put(Buffer.from('a'), Buffer.alloc(0))
  assert.deepEqual(await buffer.get(Buffer.from('a')), Buffer.alloc(0))
  assert.deepEqual(buffer.pendingOperations(), [{ type: 'put', key: Buffer.from('a'), value: Buffer.alloc(0) }])
  await base.close()
})

test('deleting a key the committed store does not hold leaves no operation; deleting a committed key leaves a tombstone', async () => {
  const base = createMemoryStore()
  await base.open()
  const buffer = new WriteBuffer(base)
  const [a, b, c] = ['a', 'b', 'c'].map((k) => Buffer.from(k)) as [Buffer, Buffer, Buffer]
  buffer.put(b, Buffer.from('1'))
  await buffer.flushToBase()

  assert.equal(await buffer.get(a), undefined)
  assert.equal(buffer.knownAbsent(a), false, 'a plain get notes nothing')
  assert.equal(await buffer.get(a, true), undefined, 'a is not committed: now known absent')
  assert.equal(buffer.knownAbsent(a), true)
  buffer.put(a, Buffer.from('x'))
  buffer.delete(a)
  // b is committed: its delete must reach the store (and the changelog) even after a put in between.
  buffer.put(b, Buffer.from('2'))
  buffer.delete(b)
  // c was never read, so nothing is known about it: its delete stays a tombstone.
  buffer.put(c, Buffer.from('y'))
  buffer.delete(c)
  assert.deepEqual(
    buffer.pendingOperations().map((o) => `${o.type} ${o.key}`),
    ['delete b', 'delete c'],
  )

  // A committed key deleted, then read (a miss in the pending layer, not in the store) is not "absent".
  buffer.clear()
  buffer.delete(b)
  assert.equal(await buffer.get(b, true), undefined)
  assert.equal(buffer.knownAbsent(b), false)
  buffer.put(b, Buffer.from('3'))
  buffer.delete(b)
  assert.deepEqual(buffer.pendingOperations().map((o) => `${o.type} ${o.key}`), ['delete b'])

  // In a stage: a delete of a key known absent drops the pending put when the stage commits, not before.
  buffer.clear()
  assert.equal(await buffer.get(a, true), undefined)
  buffer.put(a, Buffer.from('x'))
  buffer.beginStage()
  buffer.delete(a)
  assert.equal(await buffer.get(a), undefined)
  buffer.discardStage()
  assert.equal((await buffer.get(a))?.toString(), 'x', 'a discarded stage keeps the put')
  buffer.beginStage()
  buffer.delete(a)
  buffer.commitStage()
  assert.deepEqual(buffer.pendingOperations(), [])

  // A flush forgets what was absent: the store may hold anything afterwards.
  assert.equal(await buffer.get(a, true), undefined)
  buffer.put(a, Buffer.from('z'))
  await buffer.flushToBase()
  assert.equal(buffer.knownAbsent(a), false)
  buffer.delete(a)
  assert.deepEqual(buffer.pendingOperations().map((o) => `${o.type} ${o.key}`), ['delete a'])
  await base.close()
})
