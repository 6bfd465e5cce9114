// One conformance suite for every ByteStore implementation: what the runtime and processors rely on.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import type { ErrorCode } from '../../core/errors.ts'
import type { BatchOperation, ByteStore, Entry, KeyRange } from '../../state/kv-store.ts'

export type Defer = (cleanup: () => Promise<unknown> | unknown) => void

/**
 * Cleanups run after the test in reverse order of registration (node:test runs t.after hooks first-in-first-out),
 * so a store is closed before its folder is removed.
 */
export function deferrer(t: TestContext): Defer {
  const stack: Array<() => Promise<unknown> | unknown> = []
  t.after(async () => {
    while (stack.length > 0) await (stack.pop() as () => Promise<unknown> | unknown)()
  })
  return (cleanup) => {
    stack.push(cleanup)
  }
}

export interface StoreFactory {
  /** Persistent stores keep their data across close()/open() and across instances at the same location. */
  persistent: boolean
  /** A fresh place for one store's data; `defer` removes it after the test. */
  location(defer: Defer): Promise<string>
  /** An opened store at `location`. */
  open(location: string): Promise<ByteStore>
}

const b = (s: string) => Buffer.from(s, 'latin1')
const hex = (key: Buffer) => key.toString('hex')
const latin = (key: Buffer) => key.toString('latin1')
const put = (key: Buffer, value: Buffer): BatchOperation => ({ type: 'put', key, value })
const del = (key: Buffer): BatchOperation => ({ type: 'delete', key })

async function collect(iterable: AsyncIterable<Entry>): Promise<Entry[]> {
  const out: Entry[] = []
  for await (const entry of iterable) out.push(entry)
  return out
}
const keysOf = async (iterable: AsyncIterable<Entry>) => (await collect(iterable)).map(([k]) => latin(k))
const pairsOf = async (iterable: AsyncIterable<Entry>) => (await collect(iterable)).map(([k, v]) => [latin(k), latin(v)])

const rejectsWith = (code: ErrorCode) => (error: unknown) => {
  assert.ok(isWeirError(error, code), `expected ${code}, got ${String((error as Error)?.stack ?? error)}`)
  return true
}

// Deterministic pseudo-random numbers (mulberry32), so a failure reproduces.
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const describeRange = (r: KeyRange) => JSON.stringify(r, (_, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v))

/** What a range must return: the reference answer over a sorted key list. */
function expectedRange(sorted: readonly Buffer[], r: KeyRange): Buffer[] {
  let out = sorted.filter(
    (k) =>
      (r.gte === undefined || Buffer.compare(k, r.gte) >= 0) &&
      (r.gt === undefined || Buffer.compare(k, r.gt) > 0) &&
      (r.lte === undefined || Buffer.compare(k, r.lte) <= 0) &&
      (r.lt === undefined || Buffer.compare(k, r.lt) < 0),
  )
  if (r.reverse) out = out.reverse()
  return r.limit === undefined ? out : out.slice(0, r.limit)
}

export function conformance(name: string, factory: StoreFactory): void {
  const fresh = async (t: TestContext) => {
    const defer = deferrer(t)
    const store = await factory.open(await factory.location(defer))
    defer(() => store.close())
    return store
  }

  describe(name, () => {
    test('get, put, delete and getMany', async (t) => {
      const store = await fresh(t)
      assert.equal(await store.get(b('a')), undefined)
      await store.put(b('a'), b('1'))
      await store.put(b('b'), b('2'))
      await store.put(b('a'), b('3'))
      assert.deepEqual(await store.get(b('a')), b('3'), 'a put overwrites')
      assert.deepEqual(await store.getMany([b('b'), b('x'), b('a'), b('b')]), [b('2'), undefined, b('3'), b('2')], 'same order, duplicates kept')
      assert.deepEqual(await store.getMany([]), [])
      await store.delete(b('a'))
      await store.delete(b('never there'))
      assert.equal(await store.get(b('a')), undefined)
      assert.deepEqual(await pairsOf(store.range()), [['b', '2']])
    })

    test('empty values and the empty key are stored like any other', async (t) => {
      const store = await fresh(t)
      await store.write([put(Buffer.alloc(0), b('empty key')), put(b('k'), Buffer.alloc(0))])
      assert.deepEqual(await store.get(Buffer.alloc(0)), b('empty key'))
      assert.deepEqual(await store.get(b('k')), Buffer.alloc(0), 'an empty value is a value, not a miss')
      assert.deepEqual(await store.getMany([b('k'), b('missing')]), [Buffer.alloc(0), undefined])
      assert.deepEqual(await pairsOf(store.range()), [['', 'empty key'], ['k', '']])
      assert.deepEqual(await keysOf(store.range({ gt: Buffer.alloc(0) })), ['k'], 'gt the empty key excludes it')
      await store.delete(Buffer.alloc(0))
      assert.equal(await store.get(Buffer.alloc(0)), undefined)
    })

    test('binary keys are ordered byte-wise (unsigned, a prefix first)', async (t) => {
      const store = await fresh(t)
      const keys = [
        ...Array.from({ length: 256 }, (_, i) => Buffer.from([i])),
        Buffer.from([0x00, 0x00]),
        Buffer.from([0x7f, 0xff]),
        Buffer.from([0x80, 0x00]),
        Buffer.from([0xff, 0xff, 0xff]),
        Buffer.from([0xc3, 0xa9]), // 'é' in UTF-8: bytes, not characters
        b('abc'),
        b('ab'),
      ]
      const next = random(7)
      const shuffled: Buffer[] = [...keys]
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1))
        ;[shuffled[i], shuffled[j]] = [shuffled[j] as Buffer, shuffled[i] as Buffer]
      }
      await store.write(shuffled.map((key, i) => put(key, Buffer.from([i & 0xff]))))
      const sorted = [...keys].sort(Buffer.compare)
      assert.deepEqual((await collect(store.range())).map(([k]) => hex(k)), sorted.map(hex))
      assert.deepEqual((await collect(store.range({ reverse: true }))).map(([k]) => hex(k)), sorted.map(hex).reverse())
      for (const key of keys) assert.notEqual(await store.get(key), undefined, `get ${hex(key)}`)
    })

    test('buffers a store returns or is given are not shared with it', async (t) => {
      const store = await fresh(t)
      const key = b('key')
      const value = b('value')
      await store.put(key, value)
      key[0] = 0x21
      value[0] = 0x21
      assert.deepEqual(await store.get(b('key')), b('value'), 'changing the given buffers does not change the store')
      const got = (await store.get(b('key'))) as Buffer
      got[0] = 0x21
      const [[k, v]] = (await collect(store.range())) as [Entry]
      k[0] = 0x21
      v[1] = 0x21
      assert.deepEqual(await pairsOf(store.range()), [['key', 'value']], 'changing returned buffers does not change the store')
    })

    test('a batch applies in order: the later operation on a key wins', async (t) => {
      const store = await fresh(t)
      await store.write([put(b('gone'), b('x')), put(b('back'), b('x'))])
      await store.write([
        put(b('k'), b('1')),
        put(b('k'), b('2')),
        del(b('gone')),
        put(b('d'), b('x')),
        del(b('d')),
        del(b('back')),
        put(b('back'), b('again')),
      ])
      assert.deepEqual(await pairsOf(store.range()), [
        ['back', 'again'],
        ['k', '2'],
      ])
      await store.write([])
      assert.equal((await collect(store.range())).length, 2, 'an empty batch changes nothing')
    })

    test('a batch with a bad operation is a coded error and changes nothing', async (t) => {
      const store = await fresh(t)
      await store.put(b('kept'), b('1'))
      const bad: unknown[] = [
        [put(b('a'), b('1')), { type: 'put', key: 'not bytes', value: b('1') }],
        [put(b('a'), b('1')), { type: 'put', key: b('k') }],
        [del(b('kept')), { type: 'merge', key: b('k'), value: b('1') }],
        [put(b('a'), b('1')), null],
      ]
      for (const operations of bad) await assert.rejects(store.write(operations as BatchOperation[]), rejectsWith('WEIR_ERR_INVALID_OPTIONS'))
      await assert.rejects(store.write('nope' as unknown as BatchOperation[]), rejectsWith('WEIR_ERR_INVALID_OPTIONS'))
      assert.deepEqual(await pairsOf(store.range()), [['kept', '1']])
    })

    test('range bounds: inclusive, exclusive, reverse and limit, against a reference', async (t) => {
      const store = await fresh(t)
      const keys = [...['a', 'ab', 'abc', 'b', 'ba', 'c', 'd'].map(b), ...[[0x00], [0x80], [0xff], [0xff, 0x00]].map((k) => Buffer.from(k))]
      await store.write(keys.map((key) => put(key, b('v'))))
      const sorted = [...keys].sort(Buffer.compare)
      // Bounds on existing keys, between keys, and outside all keys.
      const points = [undefined, b('a'), b('aa'), b('abc'), b('b'), b('bz'), b('d'), Buffer.from([0x80]), Buffer.from([0xff]), Buffer.alloc(0)]
      let cases = 0
      for (const lo of points) {
        for (const hi of points) {
          for (const lower of ['gte', 'gt'] as const) {
            for (const upper of ['lte', 'lt'] as const) {
              for (const reverse of [false, true]) {
                for (const limit of [undefined, 0, 1, 3]) {
                  const r: KeyRange = { reverse }
                  if (lo !== undefined) r[lower] = lo
                  if (hi !== undefined) r[upper] = hi
                  if (limit !== undefined) r.limit = limit
                  const got = (await collect(store.range(r))).map(([k]) => hex(k))
                  assert.deepEqual(got, expectedRange(sorted, r).map(hex), `range ${describeRange(r)}`)
                  cases++
                }
              }
            }
          }
        }
      }
      assert.ok(cases > 1000)
    })

    test('both lower (or upper) bounds given: the tighter one applies; crossed bounds are empty', async (t) => {
      const store = await fresh(t)
      await store.write(['a', 'b', 'c', 'd', 'e'].map((k) => put(b(k), b('v'))))
      assert.deepEqual(await keysOf(store.range({ gte: b('a'), gt: b('b'), lt: b('e'), lte: b('c') })), ['c'])
      assert.deepEqual(await keysOf(store.range({ gte: b('c'), gt: b('a'), lt: b('e'), lte: b('z') })), ['c', 'd'])
      assert.deepEqual(await keysOf(store.range({ gte: b('b'), gt: b('b') })), ['c', 'd', 'e'], 'gt wins over an equal gte')
      assert.deepEqual(await keysOf(store.range({ lte: b('d'), lt: b('d'), reverse: true })), ['c', 'b', 'a'], 'lt wins over an equal lte')
      assert.deepEqual(await keysOf(store.range({ gte: b('d'), lte: b('b') })), [])
      assert.deepEqual(await keysOf(store.range({ gt: b('c'), lt: b('c') })), [])
      assert.deepEqual(await keysOf(store.range({ limit: Infinity })), ['a', 'b', 'c', 'd', 'e'])
    })

    test('prefix scans, with 0xff bytes, the empty prefix, reverse and limit', async (t) => {
      const store = await fresh(t)
      const keys = [
        ...['user:1', 'user:2', 'user:', 'user;', 'use', 'user:\xff'].map(b),
        ...[[0xff, 0xff, 0x01], [0xff, 0xff], [0xff], [0xfe, 0xff]].map((k) => Buffer.from(k)),
      ]
      await store.write(keys.map((key) => put(key, b('v'))))
      assert.deepEqual(await keysOf(store.prefix(b('user:'))), ['user:', 'user:1', 'user:2', 'user:\xff'])
      assert.deepEqual(await keysOf(store.prefix(b('user:'), { reverse: true, limit: 2 })), ['user:\xff', 'user:2'])
      assert.deepEqual((await collect(store.prefix(Buffer.from([0xff, 0xff])))).map(([k]) => hex(k)), ['ffff', 'ffff01'], 'no upper bound exists')
      assert.deepEqual((await collect(store.prefix(Buffer.from([0xfe])))).map(([k]) => hex(k)), ['feff'])
      assert.equal((await collect(store.prefix(Buffer.alloc(0)))).length, keys.length, 'the empty prefix is everything')
      assert.deepEqual(await keysOf(store.prefix(b('nobody'))), [])
    })

    test('a scan sees the store as it was at its first step', async (t) => {
      const store = await fresh(t)
      const key = (i: number) => b(`k${String(i).padStart(5, '0')}`)
      await store.write(Array.from({ length: 2000 }, (_, i) => put(key(i * 2), b(`old${i * 2}`))))
      const seen: string[] = []
      let first = true
      for await (const [k, v] of store.range()) {
        seen.push(`${latin(k)}=${latin(v)}`)
        if (first) {
          first = false
          // Inserts between scanned keys (splitting any internal chunks), deletes and overwrites ahead of the scan.
          await store.write(Array.from({ length: 3000 }, (_, i) => put(key(i * 2 + 1), b('new'))))
          await store.write(Array.from({ length: 1000 }, (_, i) => del(key(i * 4 + 2))))
          await store.write([put(key(3996), b('changed')), put(b('zzz'), b('new'))])
        }
      }
      assert.deepEqual(
        seen,
        Array.from({ length: 2000 }, (_, i) => `${latin(key(i * 2))}=old${i * 2}`),
      )
      assert.equal((await collect(store.range())).length, 2000 + 3000 - 1000 + 1, 'a new scan sees every write')
      assert.deepEqual(await store.get(key(3996)), b('changed'))
    })

    test('leaving scans early releases them', async (t) => {
      const store = await fresh(t)
      await store.write(Array.from({ length: 300 }, (_, i) => put(b(`k${1000 + i}`), b('v'))))
      for (let i = 0; i < 50; i++) {
        for await (const [k] of store.range({ gte: b(`k${1000 + i}`) })) {
          assert.equal(latin(k), `k${1000 + i}`)
          break
        }
      }
      await store.put(b('k0'), b('v'))
      assert.equal((await collect(store.range())).length, 301)
    })

    test('random batches and scans agree with a reference model', async (t) => {
      const store = await fresh(t)
      const next = random(20261124)
      const model = new Map<string, Buffer>()
      const keyAt = (i: number) => Buffer.from(`${(i * 7919) % 4001}`.padStart(4, '0') + (i % 3 === 0 ? '\xff' : ''), 'latin1')
      for (let round = 0; round < 60; round++) {
        const operations: BatchOperation[] = []
        const size = 1 + Math.floor(next() * (round % 10 === 0 ? 800 : 80))
        for (let i = 0; i < size; i++) {
          const key = keyAt(Math.floor(next() * 3000))
          if (next() < 0.3) operations.push(del(key))
          else operations.push(put(key, Buffer.from(`${round}.${i}`)))
        }
        await store.write(operations)
        for (const op of operations) {
          if (op.type === 'put') model.set(hex(op.key), op.value)
          else model.delete(hex(op.key))
        }
        const sorted = [...model.keys()].sort().map((h) => Buffer.from(h, 'hex'))
        for (let q = 0; q < 3; q++) {
          const r: KeyRange = { reverse: next() < 0.5 }
          if (next() < 0.7) r[next() < 0.5 ? 'gte' : 'gt'] = keyAt(Math.floor(next() * 3000))
          if (next() < 0.7) r[next() < 0.5 ? 'lte' : 'lt'] = keyAt(Math.floor(next() * 3000))
          if (next() < 0.5) r.limit = Math.floor(next() * 200)
          const got = (await collect(store.range(r))).map(([k, v]) => `${hex(k)}=${latin(v)}`)
          const want = expectedRange(sorted, r).map((k) => `${hex(k)}=${latin(model.get(hex(k)) as Buffer)}`)
          assert.deepEqual(got, want, `round ${round}, query ${q}`)
        }
      }
      const all = (await collect(store.range())).map(([k]) => hex(k))
      assert.deepEqual(all, [...model.keys()].sort())
      const sample = [...model.keys()].slice(0, 200).map((h) => Buffer.from(h, 'hex'))
      assert.deepEqual(await store.getMany(sample), sample.map((k) => model.get(hex(k))))
    })

    test('approximateCount follows the number of keys', async (t) => {
      const store = await fresh(t)
      assert.equal(await store.approximateCount(), 0)
      await store.write(Array.from({ length: 500 }, (_, i) => put(b(`k${i}`), b('v'))))
      const count = await store.approximateCount()
      assert.ok(count >= 250 && count <= 1000, `about 500, got ${count}`)
      await store.clear()
      assert.equal(await store.approximateCount(), 0)
    })

    test('clear removes every entry and the store stays usable', async (t) => {
      const store = await fresh(t)
      await store.write(Array.from({ length: 1000 }, (_, i) => put(Buffer.from([0xff, i >> 8, i & 0xff]), b('v'))))
      await store.write([put(Buffer.alloc(0), b('empty key'))])
      await store.clear()
      assert.deepEqual(await collect(store.range()), [])
      assert.equal(await store.get(Buffer.from([0xff, 0, 1])), undefined)
      assert.equal(await store.get(Buffer.alloc(0)), undefined)
      await store.put(b('after'), b('1'))
      assert.deepEqual(await pairsOf(store.range()), [['after', '1']])
    })

    test('bad arguments are coded errors', async (t) => {
      const store = await fresh(t)
      const invalid = rejectsWith('WEIR_ERR_INVALID_OPTIONS')
      await assert.rejects(store.get('a' as unknown as Buffer), invalid)
      await assert.rejects(store.getMany([b('a'), 1 as unknown as Buffer]), invalid)
      await assert.rejects(store.put(b('a'), undefined as unknown as Buffer), invalid)
      await assert.rejects(store.delete(null as unknown as Buffer), invalid)
      await assert.rejects(collect(store.range({ limit: -1 })), invalid)
      await assert.rejects(collect(store.range({ limit: 1.5 })), invalid)
      await assert.rejects(collect(store.range({ reverse: 'yes' as unknown as boolean })), invalid)
      await assert.rejects(collect(store.range({ gte: 'a' as unknown as Buffer })), invalid)
      await assert.rejects(collect(store.prefix(7 as unknown as Buffer)), invalid)
      // A Uint8Array that is not a Buffer is accepted as the bytes it holds.
      await store.put(new Uint8Array([1, 2]) as Buffer, new Uint8Array([3]) as Buffer)
      assert.deepEqual(await store.get(Buffer.from([1, 2])), Buffer.from([3]))
    })

    test('use after close is a coded error; open and close are idempotent', async (t) => {
      const store = await fresh(t)
      await store.put(b('a'), b('1'))
      await store.close()
      await store.close()
      const closed = rejectsWith('WEIR_ERR_CLOSED')
      await assert.rejects(store.get(b('a')), closed)
      await assert.rejects(store.getMany([b('a')]), closed)
      await assert.rejects(store.put(b('a'), b('1')), closed)
      await assert.rejects(store.delete(b('a')), closed)
      await assert.rejects(store.write([]), closed)
      await assert.rejects(collect(store.range()), closed)
      await assert.rejects(collect(store.prefix(b('a'))), closed)
      await assert.rejects(store.approximateCount(), closed)
      await assert.rejects(store.clear(), closed)
      await store.open()
      await store.open()
      await store.put(b('b'), b('2'))
      assert.deepEqual(await store.get(b('b')), b('2'))
      if (factory.persistent) assert.deepEqual(await store.get(b('a')), b('1'), 'reopened with its data')
      else assert.equal(await store.get(b('a')), undefined, 'a memory store starts empty')
    })

    test('a scan running when the store closes ends with WEIR_ERR_CLOSED', async (t) => {
      const store = await fresh(t)
      await store.write(Array.from({ length: 3000 }, (_, i) => put(b(`k${10000 + i}`), b('v'))))
      const iterator = store.range()[Symbol.asyncIterator]()
      assert.equal((await iterator.next()).done, false)
      await store.close()
      await assert.rejects(
        (async () => {
          for (let r = await iterator.next(); !r.done; r = await iterator.next());
        })(),
        rejectsWith('WEIR_ERR_CLOSED'),
      )
    })

    if (factory.persistent) {
      test('a batch written before close is there after reopening, in the same and in a new instance', async (t) => {
        const defer = deferrer(t)
        const location = await factory.location(defer)
        const first = await factory.open(location)
        defer(() => first.close())
        await first.write([put(b('x'), b('1')), put(b('y'), b('2')), del(b('x')), put(b('x'), b('3'))])
        await first.close()
        await first.open()
        assert.deepEqual(await pairsOf(first.range()), [
          ['x', '3'],
          ['y', '2'],
        ])
        await first.put(b('z'), b('4'))
        await first.close()
        const second = await factory.open(location)
        defer(() => second.close())
        assert.deepEqual(await pairsOf(second.range()), [
          ['x', '3'],
          ['y', '2'],
          ['z', '4'],
        ])
      })

      test('destroy deletes the data; the location opens empty afterwards', async (t) => {
        const defer = deferrer(t)
        const location = await factory.location(defer)
        const store = await factory.open(location)
        await store.write([put(b('x'), b('1'))])
        await store.destroy()
        await assert.rejects(store.get(b('x')), rejectsWith('WEIR_ERR_CLOSED'))
        const again = await factory.open(location)
        defer(() => again.close())
        assert.deepEqual(await collect(again.range()), [])
      })
    }
  })
}
