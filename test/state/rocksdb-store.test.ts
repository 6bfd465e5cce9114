import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { RocksDbStore, openRocksDbStore, resolveRocksDbStoreOptions } from '../../state/rocksdb-store.ts'
import type { RocksDbStoreOptions } from '../../state/rocksdb-store.ts'
import { conformance, deferrer } from './kv-store-conformance.ts'
import type { Defer } from './kv-store-conformance.ts'

async function tempDir(defer: Defer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weir-rocksdb-test-'))
  defer(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const location = async (defer: Defer) => join(await tempDir(defer), 'store')
conformance('RocksDB store', { persistent: true, location, open: (path) => openRocksDbStore({ path }) })
conformance('RocksDB store (asynchronous reads, fsynced writes)', {
  persistent: true,
  location,
  open: (path) => openRocksDbStore({ path, syncReads: false, sync: true }),
})

test('RocksDB store: options are validated at construction, every violation at once', () => {
  assert.throws(
    () => new RocksDbStore({ path: '', cacheSize: -1, sync: 'yes', syncReads: 1, walDisabled: true } as unknown as RocksDbStoreOptions),
    (error: unknown) => {
      assert.ok(isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS'))
      const violations = error.details.violations as string[]
      assert.equal(violations.length, 5, violations.join('\n'))
      assert.match(violations.join('\n'), /unknown option `walDisabled`/)
      assert.match(violations.join('\n'), /path/)
      assert.match(violations.join('\n'), /cacheSize/)
      return true
    },
  )
  assert.throws(() => new RocksDbStore(undefined as unknown as RocksDbStoreOptions), (e: unknown) => isWeirError(e, 'WEIR_ERR_INVALID_OPTIONS'))
  assert.throws(() => new RocksDbStore({ path: 'x', cacheSize: 2 ** 32 }), (e: unknown) => isWeirError(e, 'WEIR_ERR_INVALID_OPTIONS'))
  const resolved = resolveRocksDbStoreOptions({ path: 'relative/folder' })
  assert.deepEqual(resolved, { path: join(process.cwd(), 'relative/folder'), cacheSize: 8 * 1024 * 1024, sync: false, syncReads: true })
  assert.ok(Object.isFrozen(resolved))
})

test('RocksDB store: point reads are synchronous by default (an upgrade of the binding that drops them fails here)', () => {
  assert.equal(new RocksDbStore({ path: 'x' }).synchronousReads, true)
  assert.equal(new RocksDbStore({ path: 'x', syncReads: false }).synchronousReads, false)
})

test('RocksDB store: a store that is not open yet is a coded error; the folder is created on open', async (t) => {
  const defer = deferrer(t)
  const path = join(await tempDir(defer), 'a', 'b')
  const store = new RocksDbStore({ path })
  await assert.rejects(store.get(Buffer.from('k')), (e: unknown) => isWeirError(e, 'WEIR_ERR_CLOSED'))
  await store.open()
  defer(() => store.close())
  assert.ok((await stat(path)).isDirectory())
})

test('RocksDB store: a folder held by another open store is a coded error', async (t) => {
  const defer = deferrer(t)
  const path = await location(defer)
  const first = await openRocksDbStore({ path })
  defer(() => first.close())
  await assert.rejects(openRocksDbStore({ path }), (error: unknown) => {
    assert.ok(isWeirError(error, 'WEIR_ERR_STATE_STORE'))
    assert.match(error.message, /lock/i)
    return true
  })
})

test('RocksDB store: a resolved write survives the process being killed (write-ahead log)', async (t) => {
  const defer = deferrer(t)
  const path = await location(defer)
  const storeModule = new URL('../../state/rocksdb-store.ts', import.meta.url).href
  const child = `
    const { openRocksDbStore } = await import(${JSON.stringify(storeModule)})
    const store = await openRocksDbStore({ path: ${JSON.stringify(path)} })
    const ops = []
    for (let i = 0; i < 1000; i++) {
      ops.push({ type: 'put', key: Buffer.from('k' + String(i).padStart(4, '0')), value: Buffer.alloc(100, i % 256) })
    }
    await store.write(ops)
    await store.write([{ type: 'delete', key: Buffer.from('k0000') }])
    process.kill(process.pid, 'SIGKILL')
  `
  const result = spawnSync(process.execPath, ['--input-type=module', '--eval', child], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(result.signal, 'SIGKILL', `the child did not reach the kill: ${result.stderr}`)
  const store = await openRocksDbStore({ path })
  defer(() => store.close())
  const keys: string[] = []
  for await (const [key, value] of store.range()) {
    keys.push(key.toString())
    assert.equal(value.length, 100)
  }
  assert.equal(keys.length, 999)
  assert.equal(keys[0], 'k0001')
})

test('RocksDB store: destroy deletes the folder, and refuses a folder that is not a RocksDB folder', async (t) => {
  const defer = deferrer(t)
  const path = await location(defer)
  const store = await openRocksDbStore({ path })
  defer(() => store.close())
  await store.put(Buffer.from('k'), Buffer.from('v'))
  await store.destroy()
  await assert.rejects(stat(path), { code: 'ENOENT' })
  await store.destroy() // nothing left to delete: fine

  const precious = join(await tempDir(defer), 'not-a-database')
  const mistaken = new RocksDbStore({ path: precious })
  await mkdir(precious)
  await writeFile(join(precious, 'notes.txt'), 'keep me')
  await assert.rejects(mistaken.destroy(), (e: unknown) => isWeirError(e, 'WEIR_ERR_STATE_STORE'))
  assert.deepEqual(await readdir(precious), ['notes.txt'])
})

test('RocksDB store: calls made while clear() runs wait for it and see the cleared store', async (t) => {
  const defer = deferrer(t)
  const store = await openRocksDbStore({ path: await location(defer) })
  defer(() => store.close())
  await store.write(Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: Buffer.from(`k${i}`), value: Buffer.from('v') })))
  const clearing = store.clear()
  const [got, count] = await Promise.all([store.get(Buffer.from('k1')), store.approximateCount(), clearing])
  assert.equal(got, undefined)
  assert.equal(count, 0)
  await store.put(Buffer.from('k1'), Buffer.from('new'))
  assert.deepEqual(await store.get(Buffer.from('k1')), Buffer.from('new'))
})
