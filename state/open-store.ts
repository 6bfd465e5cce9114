// The default store opener of the runtime: one opener per store kind (store-kinds.ts).
import { createMemoryStore } from './memory-store.ts'
import { openRocksDbStore } from './rocksdb-store.ts'
import type { StoreKind, StoreOpener } from './store-kinds.ts'

const openers = {
  rocksdb: async ({ path }) => openRocksDbStore({ path }),
  memory: async () => createMemoryStore(),
} satisfies Record<StoreKind, StoreOpener>

export const openStore: StoreOpener = async (spec) => openers[spec.backend](spec)
