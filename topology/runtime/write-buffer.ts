// Uncommitted writes of one store, layered over the committed store. Writes of the record (or timer) being
// processed sit in a stage that is dropped if processing fails; the pending layer holds everything since the
// last Kafka commit and is applied to the committed store only after that commit succeeded. So the local
// store never holds anything Kafka does not.
import type { BaseStore, BatchOperation, RangeOptions } from './base-store.ts'

interface Entry {
  key: Buffer
  /** null = deleted */
  value: Buffer | null
}

const str = (key: Buffer) => key.toString('latin1') // byte order == string order for latin1

export class WriteBuffer {
  readonly base: BaseStore
  #pending = new Map<string, Entry>()
  #stage: Map<string, Entry> | undefined
  #staging = false

  constructor(base: BaseStore) {
    this.base = base
  }

  get size(): number {
    return this.#pending.size + (this.#stage?.size ?? 0)
  }

  beginStage(): void {
    this.#staging = true
  }

  commitStage(): void {
    this.#staging = false
    if (this.#stage === undefined) return
    for (const [k, entry] of this.#stage) this.#pending.set(k, entry)
    this.#stage = undefined
  }

  discardStage(): void {
    this.#staging = false
    this.#stage = undefined
  }

  // The stage map exists only once the current record writes.
  #target(): Map<string, Entry> {
    if (!this.#staging) return this.#pending
    this.#stage ??= new Map()
    return this.#stage
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    const k = str(key)
    const local = this.#stage?.get(k) ?? this.#pending.get(k)
    if (local !== undefined) return local.value ?? undefined
    return this.base.get(key)
  }

  put(key: Buffer, value: Buffer): void {
    this.#target().set(str(key), { key: Buffer.from(key), value })
  }

  delete(key: Buffer): void {
    this.#target().set(str(key), { key: Buffer.from(key), value: null })
  }

  /** Entries of the merged view (stage over pending over base), in key order. */
  async *range(options: RangeOptions = {}): AsyncGenerator<[Buffer, Buffer]> {
    const { limit, reverse = false, ...bounds } = options
    const overlay = new Map(this.#pending)
    if (this.#stage !== undefined) for (const [k, e] of this.#stage) overlay.set(k, e)
    const local = [...overlay.entries()].filter(([k]) => inBounds(k, bounds)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    if (reverse) local.reverse()
    let emitted = 0
    let i = 0
    const max = limit ?? Infinity
    if (max <= 0) return
    const before = (a: string, b: string) => (reverse ? a > b : a < b)
    for await (const [key, value] of this.base.range({ ...bounds, reverse })) {
      const k = str(key)
      while (i < local.length && before((local[i] as [string, Entry])[0], k)) {
        const entry = (local[i++] as [string, Entry])[1]
        if (entry.value !== null) {
          yield [entry.key, entry.value]
          if (++emitted >= max) return
        }
      }
      if (i < local.length && (local[i] as [string, Entry])[0] === k) {
        const entry = (local[i++] as [string, Entry])[1]
        if (entry.value === null) continue
        yield [entry.key, entry.value]
      } else {
        yield [key, value]
      }
      if (++emitted >= max) return
    }
    while (i < local.length) {
      const entry = (local[i++] as [string, Entry])[1]
      if (entry.value !== null) {
        yield [entry.key, entry.value]
        if (++emitted >= max) return
      }
    }
  }

  /** The pending writes, one final operation per key (what the changelog and the local store receive). */
  pendingOperations(): BatchOperation[] {
    return [...this.#pending.values()].map((e) =>
      e.value === null ? { type: 'delete' as const, key: e.key } : { type: 'put' as const, key: e.key, value: e.value },
    )
  }

  /** After the Kafka commit: make the pending writes durable locally. */
  async flushToBase(): Promise<void> {
    const operations = this.pendingOperations()
    if (operations.length > 0) await this.base.write(operations)
    this.#pending.clear()
  }

  /** After a failed commit: forget everything not committed. */
  clear(): void {
    this.#pending.clear()
    this.#stage = undefined
    this.#staging = false
  }
}

function inBounds(k: string, b: Omit<RangeOptions, 'limit' | 'reverse'>): boolean {
  if (b.gte !== undefined && k < str(b.gte)) return false
  if (b.gt !== undefined && k <= str(b.gt)) return false
  if (b.lte !== undefined && k > str(b.lte)) return false
  if (b.lt !== undefined && k >= str(b.lt)) return false
  return true
}
