// The default store opener of the runtime: RocksDB on disk, or memory (rebuilt from the changelog).
import type { StoreOpener } from '../topology/runtime/stream-runtime.ts'
import { createMemoryStore } from './memory-store.ts'
import { openRocksDbStore } from './rocksdb-store.ts'

export const openStore: StoreOpener = async ({ backend, path }) => (backend === 'memory' ? createMemoryStore() : openRocksDbStore({ path }))
