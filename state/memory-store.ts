// In-memory key-value store: for tests, the test driver, and `backend: 'memory'` stores that are rebuilt from
// their changelog on every assignment. Not persistent: close() and destroy() drop the data.
import type { BatchOperation, ByteStore, Entry, KeyRange } from './kv-store.ts'
import { prefixRange } from './kv-store.ts'
import { SortedMap } from './sorted-map.ts'
import type { ScanBounds } from './sorted-map.ts'
import { batchOperations, bytes, closedError, keyRange } from './store-checks.ts'

const NAME = 'memory store'

// latin1 maps each byte to one UTF-16 code unit, so string order is byte order.
const str = (key: Buffer) => key.toString('latin1')
// Copies out, so callers own what they get and cannot change the store through it.
const copy = (value: Buffer) => Buffer.from(value)

export class MemoryStore implements ByteStore {
  #map = new SortedMap()
  #open = true

  /** Born open (there is nothing to wait for); open() after close() starts empty. */
  async open(): Promise<void> {
    this.#open = true
  }

  async close(): Promise<void> {
    this.#open = false
    this.#map = new SortedMap()
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.#check()
    const value = this.#map.get(str(bytes(key, 'key', NAME)))
    return value === undefined ? undefined : copy(value)
  }

  async getMany(keys: readonly Buffer[]): Promise<Array<Buffer | undefined>> {
    this.#check()
    const ks = keys.map((key, i) => str(bytes(key, `keys[${i}]`, NAME)))
    return ks.map((k) => {
      const value = this.#map.get(k)
      return value === undefined ? undefined : copy(value)
    })
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    this.#check()
    this.#map.set(str(bytes(key, 'key', NAME)), copy(bytes(value, 'value', NAME)))
  }

  async delete(key: Buffer): Promise<void> {
    this.#check()
    this.#map.delete(str(bytes(key, 'key', NAME)))
  }

  async write(operations: readonly BatchOperation[]): Promise<void> {
    this.#check()
    // Checked first, then applied in one synchronous step: nothing else runs in between, so the batch is atomic.
    for (const op of batchOperations(operations, NAME)) {
      if (op.type === 'put') this.#map.set(str(op.key), copy(op.value))
      else this.#map.delete(str(op.key))
    }
  }

  async *range(range?: KeyRange): AsyncGenerator<Entry, void, undefined> {
    this.#check()
    const r = keyRange(range, NAME)
    const limit = r.limit ?? Infinity
    if (limit === 0) return
    const map = this.#map
    let n = 0
    for (const item of map.scan(scanBounds(r))) {
      yield [Buffer.from(item.k, 'latin1'), copy(item.value)]
      if (++n >= limit) return
      // A scan on a store closed under it ends with the same error as any other call.
      if (map !== this.#map) this.#check()
    }
  }

  async *prefix(prefix: Buffer, options: Pick<KeyRange, 'reverse' | 'limit'> = {}): AsyncGenerator<Entry, void, undefined> {
    yield* this.range(prefixRange(bytes(prefix, 'prefix', NAME), options))
  }

  async approximateCount(): Promise<number> {
    this.#check()
    return this.#map.size
  }

  async clear(): Promise<void> {
    this.#check()
    this.#map.clear()
  }

  async destroy(): Promise<void> {
    await this.close()
  }

  #check(): void {
    if (!this.#open) throw closedError(NAME)
  }
}

export function createMemoryStore(): MemoryStore {
  return new MemoryStore()
}

// keyRange() left at most one lower and one upper bound.
function scanBounds(r: KeyRange): ScanBounds {
  const bounds: ScanBounds = { reverse: r.reverse === true }
  if (r.gte !== undefined) bounds.lower = { k: str(r.gte), inclusive: true }
  if (r.gt !== undefined) bounds.lower = { k: str(r.gt), inclusive: false }
  if (r.lte !== undefined) bounds.upper = { k: str(r.lte), inclusive: true }
  if (r.lt !== undefined) bounds.upper = { k: str(r.lt), inclusive: false }
  return bounds
}
