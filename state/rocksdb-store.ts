// RocksDB key-value store: the only module that imports a RocksDB binding.
//
// Binding: @nxtedition/rocksdb (abstract-level API), chosen over rocksdb-native by bench/state/bindings.ts
// (figures in docs/state.md): faster on single-put commits, range scans, the timer index and multi-gets, even on
// large batches. Its synchronous multi-get reads a cached key without a thread-pool hop, and point reads are what
// a processor does per record. The binding writes, and scans through its iterator, on the calling thread.
//
// Durability: RocksDB's write-ahead log is on; a resolved write() survives a crash of the process. With
// `sync: true` each write() also fsyncs the log, so it survives an OS crash or power loss as well.
import { readdir, rm } from 'node:fs/promises'
import { resolve } from 'node:path'

import { RocksLevel } from '@nxtedition/rocksdb'

import { invalidOptions } from '../core/errors.ts'
import type { WeirError } from '../core/errors.ts'
import type { BatchOperation, ByteStore, Entry, KeyRange } from './kv-store.ts'
import { prefixRange } from './kv-store.ts'
import { batchOperations, bytes, closedError, keyRange, storeError } from './store-checks.ts'

export interface RocksDbStoreOptions {
  /** Folder of the database, created when missing. The folder belongs to the store: destroy() deletes it. */
  path: string
  /** Block cache in bytes (default 8 MiB, small because a worker has one store per partition and store; 0: none). */
  cacheSize?: number
  /** fsync the write-ahead log on every write (default false: a write survives a process crash, not power loss). */
  sync?: boolean
  /**
   * Point reads on the calling thread (default true): a cached read takes microseconds, less than the thread-pool
   * hop of an asynchronous read; a read that misses the OS page cache blocks the event loop for one disk read.
   * Uses the binding's undocumented `_getManySync`; where a build lacks it, reads are asynchronous
   * (`synchronousReads` tells which).
   */
  syncReads?: boolean
}

export type ResolvedRocksDbStoreOptions = Readonly<Required<RocksDbStoreOptions>>

const defaults = { cacheSize: 8 * 1024 * 1024, sync: false, syncReads: true } as const
const optionNames = ['path', 'cacheSize', 'sync', 'syncReads']
// The binding reads cacheSize as a uint32.
const MAX_CACHE_SIZE = 2 ** 32 - 1

/** Checks every option, reports every violation at once (WEIR_ERR_INVALID_OPTIONS), and freezes the result. */
export function resolveRocksDbStoreOptions(options: RocksDbStoreOptions): ResolvedRocksDbStoreOptions {
  if (typeof options !== 'object' || options === null) throw invalidOptions('RocksDbStore', ['options must be an object with a `path`'])
  const violations: string[] = []
  for (const name of Object.keys(options)) {
    if (!optionNames.includes(name)) violations.push(`unknown option \`${name}\` (known: ${optionNames.join(', ')})`)
  }
  const { path, cacheSize = defaults.cacheSize, sync = defaults.sync, syncReads = defaults.syncReads } = options
  if (typeof path !== 'string' || path.length === 0) violations.push('path must be a non-empty string (the database folder)')
  if (!Number.isInteger(cacheSize) || cacheSize < 0 || cacheSize > MAX_CACHE_SIZE) {
    violations.push(`cacheSize must be an integer from 0 to ${MAX_CACHE_SIZE} bytes`)
  }
  if (typeof sync !== 'boolean') violations.push('sync must be a boolean')
  if (typeof syncReads !== 'boolean') violations.push('syncReads must be a boolean')
  if (violations.length > 0) throw invalidOptions('RocksDbStore', violations)
  return Object.freeze({ path: resolve(path), cacheSize, sync, syncReads })
}

type Db = RocksLevel<Buffer, Buffer>

export class RocksDbStore implements ByteStore {
  readonly options: ResolvedRocksDbStoreOptions
  /** Whether point reads run on the calling thread: `syncReads` asked for it and the binding can. */
  readonly synchronousReads: boolean
  readonly #name: string
  // Defined exactly while the store is usable. Cleared synchronously when close/clear/destroy starts, before the
  // binding's close: a synchronous read on a closed database crashes the process (segfault), so every read checks it.
  #db: Db | undefined
  // open/close/clear/destroy run one after another; calls arriving meanwhile wait for them.
  #transition: Promise<void> | undefined

  /** Validates the options (throws WEIR_ERR_INVALID_OPTIONS); the store opens with open(). */
  constructor(options: RocksDbStoreOptions) {
    this.options = resolveRocksDbStoreOptions(options)
    this.synchronousReads = this.options.syncReads && typeof RocksLevel.prototype._getManySync === 'function'
    this.#name = `RocksDB store ${this.options.path}`
  }

  open(): Promise<void> {
    return this.#serial(async () => {
      if (this.#db === undefined) this.#db = await this.#openDb()
    })
  }

  close(): Promise<void> {
    return this.#serial(() => this.#closeDb())
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    const k = bytes(key, 'key', this.#name)
    const db = this.#transition === undefined ? this.#usable() : await this.#ready()
    const [value] = this.synchronousReads ? this.#getSync(db, [k]) : await this.#getAsync(db, [k])
    return value
  }

  async getMany(keys: readonly Buffer[]): Promise<Array<Buffer | undefined>> {
    const ks = keys.map((key, i) => bytes(key, `keys[${i}]`, this.#name))
    const db = this.#transition === undefined ? this.#usable() : await this.#ready()
    if (ks.length === 0) return []
    return this.synchronousReads ? this.#getSync(db, ks) : this.#getAsync(db, ks)
  }

  put(key: Buffer, value: Buffer): Promise<void> {
    return this.write([{ type: 'put', key, value }])
  }

  delete(key: Buffer): Promise<void> {
    return this.write([{ type: 'delete', key }])
  }

  async write(operations: readonly BatchOperation[]): Promise<void> {
    const ops = batchOperations(operations, this.#name)
    const db = this.#transition === undefined ? this.#usable() : await this.#ready()
    if (ops.length === 0) return
    try {
      // The chained batch skips batch(array)'s second validation and copy; the operations were checked above.
      const batch = db.batch()
      try {
        for (const op of ops) {
          if (op.type === 'put') batch.put(op.key, op.value)
          else batch.del(op.key)
        }
      } catch (cause) {
        await batch.close()
        throw cause
      }
      await batch.write({ sync: this.options.sync })
    } catch (cause) {
      throw this.#failure(db, 'write', cause)
    }
  }

  async *range(range?: KeyRange): AsyncGenerator<Entry, void, undefined> {
    const r = keyRange(range, this.#name)
    const db = this.#transition === undefined ? this.#usable() : await this.#ready()
    if (r.limit === 0) return
    const { limit, ...bounds } = r
    try {
      // The binding's iterator reads from an implicit snapshot taken when it is created (here, at the first step).
      for await (const entry of db.iterator(limit === undefined || limit === Infinity ? bounds : { ...bounds, limit })) yield entry
    } catch (cause) {
      throw this.#failure(db, 'range', cause)
    }
  }

  async *prefix(prefix: Buffer, options: Pick<KeyRange, 'reverse' | 'limit'> = {}): AsyncGenerator<Entry, void, undefined> {
    yield* this.range(prefixRange(bytes(prefix, 'prefix', this.#name), options))
  }

  async approximateCount(): Promise<number> {
    const db = this.#transition === undefined ? this.#usable() : await this.#ready()
    try {
      return Number(db.getProperty('rocksdb.estimate-num-keys'))
    } catch (cause) {
      throw this.#failure(db, 'approximateCount', cause)
    }
  }

  /**
   * Deletes the database folder and opens a fresh one: exact and immediate, where a range delete would leave
   * tombstones behind (and the binding's clear() writes a 1 MB end key). Scans running on the old data end with
   * WEIR_ERR_STATE_STORE.
   */
  clear(): Promise<void> {
    return this.#serial(async () => {
      if (this.#db === undefined) throw closedError(this.#name)
      await this.#closeDb()
      await this.#removeFolder()
      this.#db = await this.#openDb()
    })
  }

  destroy(): Promise<void> {
    return this.#serial(async () => {
      await this.#closeDb()
      await this.#removeFolder()
    })
  }

  async #openDb(): Promise<Db> {
    const db = new RocksLevel<Buffer, Buffer>(this.options.path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    try {
      // point-lookup: hash index in data blocks, Ribbon filters and a whole-key bloom filter on the memtable; stores
      // are read by key far more than scanned, and most reads of dedupe, arbiter and timer stores are misses
      // (_getManySync on 100k keys: a miss 7.5 -> 2.5 µs, a hit 9.9 -> 5.2 µs, with compression off too).
      // No compression: the stores are local caches of their changelogs, and ZSTD with dictionary training spent
      // a core that the broker and the worker need on these 2-core machines.
      await db.open({ createIfMissing: true, errorIfExists: false, cacheSize: this.options.cacheSize, optimize: 'point-lookup', compression: false })
    } catch (cause) {
      // abstract-level wraps the binding's error (a held LOCK, a corrupt folder) in LEVEL_DATABASE_NOT_OPEN.
      throw storeError(this.#name, 'open', (cause as Error | undefined)?.cause ?? cause)
    }
    return db
  }

  async #closeDb(): Promise<void> {
    const db = this.#db
    if (db === undefined) return
    this.#db = undefined
    try {
      await db.close()
    } catch (cause) {
      throw storeError(this.#name, 'close', cause)
    }
  }

  // Deletes the folder only when it is a RocksDB folder (or empty): a mistyped path must not cost someone a folder.
  async #removeFolder(): Promise<void> {
    const { path } = this.options
    let names: string[]
    try {
      names = await readdir(path)
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return
      throw storeError(this.#name, 'destroy', cause)
    }
    if (names.length > 0 && !names.includes('CURRENT')) {
      throw storeError(this.#name, 'destroy', new Error(`${path} does not look like a RocksDB folder (no CURRENT file); not deleting it`))
    }
    await rm(path, { recursive: true, force: true })
  }

  #getSync(db: Db, keys: Buffer[]): Array<Buffer | undefined> {
    // Belt and braces: #db is only set while open, and a synchronous read of a closed database is a segfault.
    if (db.status !== 'open') throw this.#failure(db, 'get', new Error(`database is ${db.status}`))
    let values: Array<Buffer | null | undefined>
    try {
      values = (db._getManySync as (keys: Buffer[]) => Array<Buffer | null | undefined>).call(db, keys)
    } catch (cause) {
      throw this.#failure(db, 'get', cause)
    }
    // null is the binding's "aborted or timed out", which no option of ours asks for.
    if (values.includes(null)) throw storeError(this.#name, 'get', new Error('a read was aborted'))
    return values as Array<Buffer | undefined>
  }

  async #getAsync(db: Db, keys: Buffer[]): Promise<Array<Buffer | undefined>> {
    try {
      return await db.getMany(keys)
    } catch (cause) {
      throw this.#failure(db, 'get', cause)
    }
  }

  #usable(): Db {
    if (this.#db === undefined) throw closedError(this.#name)
    return this.#db
  }

  async #ready(): Promise<Db> {
    while (this.#transition !== undefined) await this.#transition
    return this.#usable()
  }

  // A binding error: WEIR_ERR_CLOSED when the store was closed under the call, else WEIR_ERR_STATE_STORE.
  #failure(db: Db, operation: string, cause: unknown): WeirError {
    if (this.#db !== db && this.#db === undefined && this.#transition === undefined) return closedError(this.#name)
    return storeError(this.#name, this.#db === db ? operation : `${operation} (the store was closed or cleared meanwhile)`, cause)
  }

  #serial(step: () => Promise<void>): Promise<void> {
    const run = (this.#transition ?? Promise.resolve()).then(step)
    const settled: Promise<void> = run.then(
      () => this.#settle(settled),
      () => this.#settle(settled),
    )
    this.#transition = settled
    return run
  }

  #settle(done: Promise<void>): void {
    if (this.#transition === done) this.#transition = undefined
  }
}

/** A validated, opened RocksDB store. */
export async function openRocksDbStore(options: RocksDbStoreOptions): Promise<RocksDbStore> {
  const store = new RocksDbStore(options)
  await store.open()
  return store
}
