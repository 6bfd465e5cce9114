// In-memory key-value store: a sorted key array (binary search) plus a map. For tests, the test driver and
// small stores that are rebuilt from their changelog on every assignment.
import { WeirError } from '../core/errors.ts'
import { prefixRange } from './kv-store.ts'
import type { BatchOperation, KeyRange, KeyValueStore } from './kv-store.ts'

// latin1 maps each byte to one UTF-16 code unit, so string order is byte order.
const str = (key: Buffer) => key.toString('latin1')

export function createMemoryStore(): KeyValueStore {
  let keys: string[] = []
  const values = new Map<string, Buffer>()
  let closed = false
  const guard = () => {
    if (closed) throw new WeirError('WEIR_ERR_CLOSED', 'memory store is closed')
  }

  // First index whose key is >= k.
  const lowerBound = (k: string) => {
    let lo = 0
    let hi = keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((keys[mid] as string) < k) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const put = (key: Buffer, value: Buffer) => {
    const k = str(key)
    if (!values.has(k)) keys.splice(lowerBound(k), 0, k)
    values.set(k, Buffer.from(value))
  }
  const del = (key: Buffer) => {
    const k = str(key)
    if (!values.delete(k)) return
    keys.splice(lowerBound(k), 1)
  }

  const store: KeyValueStore = {
    async get(key) {
      guard()
      return values.get(str(key))
    },
    async getMany(list) {
      guard()
      return list.map((key) => values.get(str(key)))
    },
    async put(key, value) {
      guard()
      put(key, value)
    },
    async delete(key) {
      guard()
      del(key)
    },
    async write(operations: readonly BatchOperation[]) {
      guard()
      for (const op of operations) {
        if (op.type === 'put') put(op.key, op.value)
        else del(op.key)
      }
    },
    async *range(range: KeyRange = {}) {
      guard()
      let start = 0
      let end = keys.length
      if (range.gte !== undefined) start = Math.max(start, lowerBound(str(range.gte)))
      if (range.gt !== undefined) {
        const g = str(range.gt)
        let i = lowerBound(g)
        if (keys[i] === g) i++
        start = Math.max(start, i)
      }
      if (range.lt !== undefined) end = Math.min(end, lowerBound(str(range.lt)))
      if (range.lte !== undefined) {
        const l = str(range.lte)
        let i = lowerBound(l)
        if (keys[i] === l) i++
        end = Math.min(end, i)
      }
      // A snapshot of the matching keys, so writes during iteration do not disturb it.
      const slice = keys.slice(start, Math.max(start, end))
      if (range.reverse) slice.reverse()
      const limit = range.limit ?? Infinity
      let n = 0
      for (const k of slice) {
        if (n++ >= limit) return
        const value = values.get(k)
        if (value !== undefined) yield [Buffer.from(k, 'latin1'), value]
      }
    },
    prefix(prefix) {
      return store.range(prefixRange(prefix))
    },
    async approximateCount() {
      guard()
      return values.size
    },
    async clear() {
      guard()
      keys = []
      values.clear()
    },
    async close() {
      closed = true
    },
  }
  return store
}
