// One conformance suite for every KeyValueStore implementation.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import type { KeyValueStore } from '../../state/kv-store.ts'

export interface StoreHarness {
  /** Opens a store; the same `id` reopens the same data when the implementation is persistent. */
  open(id: string): Promise<KeyValueStore>
  persistent: boolean
}

const b = (s: string) => Buffer.from(s)
const all = async (iterable: AsyncIterable<[Buffer, Buffer]>) => {
  const out: Array<[string, string]> = []
  for await (const [k, v] of iterable) out.push([k.toString('latin1'), v.toString('latin1')])
  return out
}

export function conformance(name: string, harness: StoreHarness): void {
  let counter = 0
  const fresh = async (t: { after: (fn: () => Promise<void>) => void }) => {
    const store = await harness.open(`${name}-${process.pid}-${counter++}`)
    t.after(() => store.close())
    return store
  }

  test(`${name}: get, put, delete, getMany`, async (t) => {
    const store = await fresh(t)
    assert.equal(await store.get(b('a')), undefined)
    await store.put(b('a'), b('1'))
    await store.put(b('b'), Buffer.alloc(0))
    assert.deepEqual(await store.get(b('a')), b('1'))
    assert.deepEqual(await store.get(b('b')), Buffer.alloc(0), 'empty values are values')
    assert.deepEqual(await store.getMany([b('a'), b('x'), b('b')]), [b('1'), undefined, Buffer.alloc(0)])
    await store.delete(b('a'))
    await store.delete(b('never'))
    assert.equal(await store.get(b('a')), undefined)
  })

  test(`${name}: a batch applies in order, later operations win`, async (t) => {
    const store = await fresh(t)
    await store.put(b('gone'), b('x'))
    await store.write([
      { type: 'put', key: b('k'), value: b('1') },
      { type: 'put', key: b('k'), value: b('2') },
      { type: 'delete', key: b('gone') },
      { type: 'put', key: b('d'), value: b('x') },
      { type: 'delete', key: b('d') },
    ])
    assert.deepEqual(await all(store.range()), [['k', '2']])
  })

  test(`${name}: ranges are byte-ordered with inclusive and exclusive bounds, reverse and limit`, async (t) => {
    const store = await fresh(t)
    const keys = [Buffer.from([0x00]), b('a'), b('ab'), b('b'), Buffer.from([0x7f]), Buffer.from([0x80]), Buffer.from([0xff]), Buffer.from([0xff, 0x00])]
    await store.write(keys.map((key, i) => ({ type: 'put' as const, key, value: b(String(i)) })))
    const order = (await all(store.range())).map(([, v]) => v)
    assert.deepEqual(order, ['0', '1', '2', '3', '4', '5', '6', '7'], 'byte order, 0x80 and 0xff after ASCII')
    assert.deepEqual((await all(store.range({ gte: b('a'), lte: b('b') }))).map(([k]) => k), ['a', 'ab', 'b'])
    assert.deepEqual((await all(store.range({ gt: b('a'), lt: b('b') }))).map(([k]) => k), ['ab'])
    assert.deepEqual((await all(store.range({ gte: b('a'), reverse: true, limit: 3 }))).map(([, v]) => v), ['7', '6', '5'])
    assert.deepEqual((await all(store.range({ limit: 2 }))).map(([, v]) => v), ['0', '1'])
    assert.deepEqual(await all(store.range({ gt: b('z'), lt: b('a') })), [], 'an empty range is empty')
  })

  test(`${name}: prefix scans, also with 0xff bytes`, async (t) => {
    const store = await fresh(t)
    const keys = [b('user:1'), b('user:2'), b('user;'), b('use'), Buffer.from([0xff, 0xff, 0x01]), Buffer.from([0xff, 0xff]), Buffer.from([0xfe])]
    await store.write(keys.map((key) => ({ type: 'put' as const, key, value: b('v') })))
    assert.deepEqual((await all(store.prefix(b('user:')))).map(([k]) => k), ['user:1', 'user:2'])
    assert.deepEqual((await all(store.prefix(Buffer.from([0xff, 0xff])))).map(([k]) => Buffer.from(k, 'latin1').toString('hex')), ['ffff', 'ffff01'])
  })

  test(`${name}: approximateCount and clear`, async (t) => {
    const store = await fresh(t)
    await store.write(Array.from({ length: 500 }, (_, i) => ({ type: 'put' as const, key: b(`k${i}`), value: b('v') })))
    const count = await store.approximateCount()
    assert.ok(count >= 250 && count <= 1000, `approximately 500, got ${count}`)
    await store.clear()
    assert.deepEqual(await all(store.range()), [])
    assert.equal(await store.get(b('k1')), undefined)
  })

  test(`${name}: use after close is a coded error`, async () => {
    const store = await harness.open(`${name}-closed-${process.pid}-${counter++}`)
    await store.close()
    await assert.rejects(store.get(b('a')), (e: unknown) => isWeirError(e, 'WEIR_ERR_CLOSED'))
    await assert.rejects(store.write([]), (e: unknown) => isWeirError(e, 'WEIR_ERR_CLOSED'))
  })

  if (harness.persistent) {
    test(`${name}: data written before close is there after reopening`, async () => {
      const id = `${name}-reopen-${process.pid}-${counter++}`
      const first = await harness.open(id)
      await first.write([
        { type: 'put', key: b('x'), value: b('1') },
        { type: 'put', key: b('y'), value: b('2') },
      ])
      await first.close()
      const second = await harness.open(id)
      assert.deepEqual(await all(second.range()), [
        ['x', '1'],
        ['y', '2'],
      ])
      await second.close()
    })
  }
}
