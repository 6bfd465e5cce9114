// Durable timers over a write buffer: due scans and the earliest pending time an idle worker waits for.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createMemoryStore } from '../../../state/memory-store.ts'
import { DurableTimers, isKeyIndexKey, rebuildKeyIndex } from '../../../topology/runtime/timers.ts'
import { WriteBuffer } from '../../../topology/runtime/write-buffer.ts'

async function timers(): Promise<{ timers: DurableTimers; buffer: WriteBuffer }> {
  const base = createMemoryStore()
  await base.open()
  const buffer = new WriteBuffer(base)
  return { timers: new DurableTimers(buffer), buffer }
}

test('nextAt is the earliest pending timer, across pending and committed writes, and follows set, cancel and remove', async () => {
  const { timers: t, buffer } = await timers()
  assert.equal(await t.nextAt(), undefined)
  await t.set('b', 2_000)
  await t.set('a', 3_000)
  await buffer.flushToBase()
  await t.set('c', 1_500)
  assert.equal(await t.nextAt(), 1_500)
  await t.cancel('c')
  assert.equal(await t.nextAt(), 2_000)
  // Moving a timer later moves the earliest time too.
  await t.set('b', 5_000)
  assert.equal(await t.nextAt(), 3_000)
  const [due] = await t.due(3_000, 10)
  assert.ok(due)
  assert.equal(due.key, 'a')
  t.remove(due)
  assert.equal(await t.nextAt(), 5_000)
  assert.deepEqual(await t.due(4_999, 10), [])
  // A timer set before what already fired is found again.
  await t.set('z', 1_000)
  assert.equal(await t.nextAt(), 1_000)
  assert.deepEqual((await t.due(4_999, 10)).map((d) => d.key), ['z'])
})

test('a timer set and cancelled (or fired) between two commits leaves no operation; a committed one leaves tombstones', async () => {
  const { timers: t, buffer } = await timers()
  const ops = () => buffer.pendingOperations().map((o) => `${o.type} ${o.key.toString('latin1').slice(0, 1)}`)
  await t.set('deadline', 5_000, { requestId: 'r-1' })
  await t.cancel('deadline')
  await t.set('fires', 1_000)
  const [due] = await t.due(1_000, 10)
  assert.equal(due?.key, 'fires')
  t.remove(due as NonNullable<typeof due>)
  assert.deepEqual(ops(), [], 'nothing to commit')

  // Committed, then cancelled: both entries are deleted in the changelog.
  await t.set('kept', 9_000)
  await buffer.flushToBase()
  await t.cancel('kept')
  assert.deepEqual(ops(), ['delete k', 'delete t'])
  // Set again after the cancel, then cancelled again: the committed entries must still be deleted (and the new
  // time entry gets a tombstone too: with its key entry deleted rather than absent, nothing vouches for it).
  await t.set('kept', 8_000)
  await t.cancel('kept')
  assert.deepEqual(ops(), ['delete k', 'delete t', 'delete t'])
  await buffer.flushToBase()
  assert.equal(await t.nextAt(), undefined)
  assert.equal(await t.get('kept'), undefined)

  // Moved before the commit: only the final time is written.
  await t.set('moved', 3_000)
  await t.set('moved', 4_000)
  assert.deepEqual(ops(), ['put k', 'put t'])
  await buffer.flushToBase()
  assert.deepEqual(await t.get('moved'), { at: 4_000, payload: null })
  assert.deepEqual((await t.due(10_000, 10)).map((d) => [d.key, d.at]), [['moved', 4_000]])
})

test('rebuildKeyIndex derives the key index from the time space: stale entries go, cancel and replace work again', async () => {
  const base = createMemoryStore()
  await base.open()
  const buffer = new WriteBuffer(base)
  const t = new DurableTimers(buffer)
  await t.set('a', 2_000, { n: 1 })
  await t.set('b', 3_000)
  await t.set('c', 4_000)
  await buffer.flushToBase()
  // What a restore from the changelog leaves: the time space only, plus an index entry that no timer backs.
  const index: Buffer[] = []
  for await (const [key] of base.range({})) if (isKeyIndexKey(key)) index.push(key)
  assert.equal(index.length, 3)
  await base.write([...index.map((key) => ({ type: 'delete' as const, key })), { type: 'put', key: Buffer.from('kstale'), value: Buffer.alloc(8) }])

  assert.equal(await rebuildKeyIndex(base), 3)
  const rebuilt: string[] = []
  for await (const [key, value] of base.range({ gte: Buffer.from('k'), lt: Buffer.from('l') })) rebuilt.push(`${key.subarray(1)}@${value.readBigUInt64BE(0)}`)
  assert.deepEqual(rebuilt, ['a@2000', 'b@3000', 'c@4000'])

  const fresh = new DurableTimers(new WriteBuffer(base))
  assert.deepEqual(await fresh.get('a'), { at: 2_000, payload: { n: 1 } })
  assert.equal(await fresh.cancel('b'), true)
  await fresh.set('c', 1_000) // replaces c's timer: the old time entry goes
  assert.deepEqual((await fresh.due(10_000, 10)).map((d) => `${d.key}@${d.at}`), ['c@1000', 'a@2000'])
})

test('due() scans the store only when a timer can be due: it remembers how long nothing is, and set() or reset() undoes that', async () => {
  const base = createMemoryStore()
  await base.open()
  let scans = 0
  const counting = new Proxy(base, {
    get(target, property, receiver) {
      if (property === 'range') {
        return (...args: Parameters<typeof base.range>) => {
          scans++
          return target.range(...args)
        }
      }
      const value = Reflect.get(target, property, receiver) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
  const buffer = new WriteBuffer(counting)
  const t = new DurableTimers(buffer)
  await t.set('late', 5_000)
  await buffer.flushToBase()
  assert.deepEqual(await t.due(1_000, 10), [])
  const afterFirst = scans
  assert.ok(afterFirst >= 1)
  for (const now of [1_500, 2_000, 4_999]) assert.deepEqual(await t.due(now, 10), [])
  assert.equal(scans, afterFirst, 'nothing can be due before 5,000: no scan')

  await t.set('early', 1_200) // before the remembered time: the next check scans and finds it
  assert.deepEqual((await t.due(2_000, 10)).map((d) => d.key), ['early'])
  t.remove({ key: 'early', at: 1_200, payload: null })
  const settled = scans
  assert.deepEqual(await t.due(3_000, 10), [])
  assert.equal(scans, settled, 'after firing what was due, the next pending timer (5,000) is known')

  t.reset() // a rollback: what fired is pending again, the remembered time is forgotten
  assert.deepEqual(await t.due(3_000, 10), [])
  assert.ok(scans > settled)
  assert.deepEqual((await t.due(5_000, 10)).map((d) => d.key), ['late'])
})
