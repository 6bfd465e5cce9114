// The memory store's index: byte keys in order, with cheap snapshots for scans.
//
// Keys are kept as latin1 strings (one UTF-16 unit per byte, so string order is byte order). Items sit in sorted
// chunks of at most MAX_CHUNK, found by binary search over the chunks' first keys, so an insert or delete moves
// at most one chunk's items rather than the whole map (a flat sorted array spent ~18 µs per insert at 100k keys).
// A Map beside the chunks answers point reads. Snapshots are copy-on-write by generation: snapshot() bumps the
// generation and hands out the current chunk list; the next write copies the chunk list and the chunk it
// touches (only if they are from an older generation), so a scan keeps a fixed view without copying the map.

const MAX_CHUNK = 512

interface Item {
  readonly k: string
  readonly value: Buffer
}

interface Chunk {
  gen: number
  items: Item[]
}

export interface Bound {
  k: string
  inclusive: boolean
}

export interface ScanBounds {
  lower?: Bound
  upper?: Bound
  reverse?: boolean
}

export class SortedMap {
  #chunks: Chunk[] = []
  #chunksGen = 0
  #gen = 0
  #index = new Map<string, Item>()

  get size(): number {
    return this.#index.size
  }

  get(k: string): Buffer | undefined {
    return this.#index.get(k)?.value
  }

  set(k: string, value: Buffer): void {
    const item: Item = { k, value }
    if (this.#chunks.length === 0) {
      this.#chunks = [{ gen: this.#gen, items: [item] }]
      this.#chunksGen = this.#gen
      this.#index.set(k, item)
      return
    }
    const ci = this.#chunkFor(k)
    const chunk = this.#writableChunk(ci)
    const i = lowerBound(chunk.items, k)
    if (chunk.items[i]?.k === k) chunk.items[i] = item
    else chunk.items.splice(i, 0, item)
    if (chunk.items.length > MAX_CHUNK) {
      const half = chunk.items.length >> 1
      this.#chunks.splice(ci + 1, 0, { gen: this.#gen, items: chunk.items.splice(half) })
    }
    this.#index.set(k, item)
  }

  delete(k: string): boolean {
    if (!this.#index.delete(k)) return false
    const ci = this.#chunkFor(k)
    const chunk = this.#writableChunk(ci)
    chunk.items.splice(lowerBound(chunk.items, k), 1)
    if (chunk.items.length === 0) this.#chunks.splice(ci, 1)
    return true
  }

  clear(): void {
    // Snapshots keep the old chunk list; nothing of it is modified.
    this.#chunks = []
    this.#chunksGen = this.#gen
    this.#index = new Map()
  }

  /**
   * Items within the bounds, in order, from a snapshot taken at the first next(): later writes do not show up.
   * Unused snapshots cost nothing; a write after a snapshot copies the chunk list and one chunk once.
   */
  *scan(bounds: ScanBounds): Generator<{ k: string; value: Buffer }, void, undefined> {
    const chunks = this.#chunks
    this.#gen++
    const { lower, upper } = bounds
    const belowLower = (k: string) => lower !== undefined && (k < lower.k || (k === lower.k && !lower.inclusive))
    const aboveUpper = (k: string) => upper !== undefined && (k > upper.k || (k === upper.k && !upper.inclusive))
    if (chunks.length === 0 || (lower !== undefined && upper !== undefined && lower.k > upper.k)) return
    if (bounds.reverse) {
      let ci = upper === undefined ? chunks.length - 1 : chunkFor(chunks, upper.k)
      let i = upper === undefined ? (chunks[ci] as Chunk).items.length - 1 : upperBound((chunks[ci] as Chunk).items, upper.k) - 1
      for (; ci >= 0; ci--, i = ci >= 0 ? (chunks[ci] as Chunk).items.length - 1 : 0) {
        const items = (chunks[ci] as Chunk).items
        for (; i >= 0; i--) {
          const item = items[i] as Item
          if (aboveUpper(item.k)) continue
          if (belowLower(item.k)) return
          yield item
        }
      }
      return
    }
    let ci = lower === undefined ? 0 : chunkFor(chunks, lower.k)
    let i = lower === undefined ? 0 : lowerBound((chunks[ci] as Chunk).items, lower.k)
    for (; ci < chunks.length; ci++, i = 0) {
      const items = (chunks[ci] as Chunk).items
      for (; i < items.length; i++) {
        const item = items[i] as Item
        if (belowLower(item.k)) continue
        if (aboveUpper(item.k)) return
        yield item
      }
    }
  }

  #chunkFor(k: string): number {
    return chunkFor(this.#chunks, k)
  }

  // The chunk at `ci`, copied first (with the chunk list) when a snapshot may still hold it.
  #writableChunk(ci: number): Chunk {
    if (this.#chunksGen !== this.#gen) {
      this.#chunks = this.#chunks.slice()
      this.#chunksGen = this.#gen
    }
    let chunk = this.#chunks[ci] as Chunk
    if (chunk.gen !== this.#gen) {
      chunk = { gen: this.#gen, items: chunk.items.slice() }
      this.#chunks[ci] = chunk
    }
    return chunk
  }
}

// The last chunk whose first key is <= k (the first chunk when k precedes every key).
function chunkFor(chunks: readonly Chunk[], k: string): number {
  let lo = 0
  let hi = chunks.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1
    if (((chunks[mid] as Chunk).items[0] as Item).k <= k) lo = mid
    else hi = mid - 1
  }
  return lo
}

// First index whose key is >= k.
function lowerBound(items: readonly Item[], k: string): number {
  let lo = 0
  let hi = items.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((items[mid] as Item).k < k) lo = mid + 1
    else hi = mid
  }
  return lo
}

// First index whose key is > k.
function upperBound(items: readonly Item[], k: string): number {
  let lo = 0
  let hi = items.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((items[mid] as Item).k <= k) lo = mid + 1
    else hi = mid
  }
  return lo
}
