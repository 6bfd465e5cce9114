// RocksDB key-value store (the only module that imports a RocksDB binding).
//
// Binding: @nxtedition/rocksdb (RocksDB 9.7). Measured with bench/state/bindings.ts against rocksdb-native
// (docs/state.md): its synchronous multi-get is 14x faster for the point reads a processor does per record,
// batched writes are as fast or faster, range scans 5x. Reads are synchronous (a RocksDB get from the block
// cache takes microseconds; a thread-pool hop costs more than the read); writes and scans stay asynchronous.
import { mkdir, rm } from 'node:fs/promises'

import { RocksLevel } from '@nxtedition/rocksdb'

import { WeirError, invalidOptions } from '../core/errors.ts'
import { prefixRange } from './kv-store.ts'
import type { BatchOperation, KeyRange, KeyValueStore } from './kv-store.ts'

export interface RocksDbStoreOptions {
  /** Folder of the database (created when missing). */
  path: string
  /** Block cache size in bytes (default 8 MiB: many small stores share a worker). */
  cacheSize?: number
}

interface SyncReads {
  _getManySync(keys: Buffer[]): Array<Buffer | undefined>
}

export async function openRocksDbStore(options: RocksDbStoreOptions): Promise<KeyValueStore> {
  const violations: string[] = []
  if (typeof options.path !== 'string' || options.path.length === 0) violations.push('path must be a folder path')
  if (options.cacheSize !== undefined && !(Number.isInteger(options.cacheSize) && options.cacheSize >= 0)) violations.push('cacheSize must be an integer >= 0')
  if (violations.length > 0) throw invalidOptions('RocksDbStore', violations)
  await mkdir(options.path, { recursive: true })
  const db = new RocksLevel<Buffer, Buffer>(options.path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  try {
    await db.open({ createIfMissing: true, cacheSize: options.cacheSize ?? 8 * 1024 * 1024 } as Parameters<typeof db.open>[0])
  } catch (cause) {
    throw new WeirError('WEIR_ERR_STATE_STORE', `cannot open RocksDB at ${options.path}: ${(cause as Error).message}`, { cause })
  }
  const sync = db as unknown as SyncReads
  let closed = false
  const guard = () => {
    if (closed) throw new WeirError('WEIR_ERR_CLOSED', `RocksDB store ${options.path} is closed`)
  }
  const wrap = (what: string) => (cause: unknown) => {
    throw new WeirError('WEIR_ERR_STATE_STORE', `RocksDB ${what} failed at ${options.path}: ${(cause as Error).message}`, { cause })
  }

  const store: KeyValueStore = {
    async get(key) {
      guard()
      return sync._getManySync([key])[0] ?? undefined
    },
    async getMany(keys) {
      guard()
      return sync._getManySync([...keys]).map((v) => v ?? undefined)
    },
    async put(key, value) {
      guard()
      await db.put(key, value).catch(wrap('put'))
    },
    async delete(key) {
      guard()
      await db.del(key).catch(wrap('delete'))
    },
    async write(operations: readonly BatchOperation[]) {
      guard()
      if (operations.length === 0) return
      await db
        .batch(operations.map((op) => (op.type === 'put' ? { type: 'put' as const, key: op.key, value: op.value } : { type: 'del' as const, key: op.key })))
        .catch(wrap('write batch'))
    },
    async *range(range: KeyRange = {}) {
      guard()
      const options: Record<string, unknown> = {}
      for (const bound of ['gte', 'gt', 'lte', 'lt'] as const) if (range[bound] !== undefined) options[bound] = range[bound]
      if (range.reverse) options.reverse = true
      if (range.limit !== undefined) options.limit = range.limit
      for await (const entry of db.iterator(options)) yield entry as [Buffer, Buffer]
    },
    prefix(prefix) {
      return store.range(prefixRange(prefix))
    },
    async approximateCount() {
      guard()
      return Number(db.getProperty('rocksdb.estimate-num-keys'))
    },
    async clear() {
      guard()
      await db.clear().catch(wrap('clear'))
    },
    async close() {
      if (closed) return
      closed = true
      await db.close()
    },
  }
  return store
}

/** Deletes a store's folder (after close). */
export async function destroyRocksDbStore(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true })
}
