// Temporary in-memory store for runtime tests until state/ lands (sorted array, linear inserts: small data only).
import type { BatchOperation, RangeOptions } from '../../topology/runtime/base-store.ts'
import type { OpenedStore, StoreOpener } from '../../topology/runtime/stream-runtime.ts'

const str = (b: Buffer) => b.toString('latin1')

export function simpleStore(): OpenedStore {
  const data = new Map<string, Buffer>()
  return {
    async get(key) {
      return data.get(str(key))
    },
    async *range(options: RangeOptions = {}) {
      let keys = [...data.keys()].sort()
      if (options.gte) keys = keys.filter((k) => k >= str(options.gte as Buffer))
      if (options.gt) keys = keys.filter((k) => k > str(options.gt as Buffer))
      if (options.lte) keys = keys.filter((k) => k <= str(options.lte as Buffer))
      if (options.lt) keys = keys.filter((k) => k < str(options.lt as Buffer))
      if (options.reverse) keys.reverse()
      if (options.limit !== undefined) keys = keys.slice(0, options.limit)
      for (const k of keys) yield [Buffer.from(k, 'latin1'), data.get(k) as Buffer] as [Buffer, Buffer]
    },
    async write(operations: readonly BatchOperation[]) {
      for (const op of operations) {
        if (op.type === 'put') data.set(str(op.key), op.value)
        else data.delete(str(op.key))
      }
    },
    async approximateCount() {
      return data.size
    },
    async close() {},
    async clear() {
      data.clear()
    },
  }
}

/** Opens simple stores that survive close/reopen within the process (like a disk would), keyed by path. */
export function simpleOpener(): StoreOpener {
  const disks = new Map<string, OpenedStore>()
  return async ({ path, backend }) => {
    if (backend === 'memory') return simpleStore()
    let store = disks.get(path)
    if (store === undefined) {
      store = simpleStore()
      disks.set(path, store)
    }
    return store
  }
}
