// The key-value store a task's state lives in. Keys and values are bytes; keys are ordered byte-wise (unsigned,
// shorter first when one is a prefix of the other). Kept as small as Kafka Streams' KeyValueStore: typed views,
// per-record staging, changelogs and timers are layered on top by the runtime (topology/runtime/).
//
// Bytes are Node Buffers (a Uint8Array subclass): the runtime hands store keys to Kafka and compares range bounds
// as latin1 strings, both of which want Buffers. Buffers a store returns belong to the caller; a store never
// keeps a reference to a Buffer it was given.

export interface KeyRange {
  /** Lower bound, inclusive. */
  gte?: Buffer
  /** Lower bound, exclusive. */
  gt?: Buffer
  /** Upper bound, inclusive. */
  lte?: Buffer
  /** Upper bound, exclusive. */
  lt?: Buffer
  /** Descending key order (the bounds keep their meaning). */
  reverse?: boolean
  /** At most this many entries (an integer >= 0). */
  limit?: number
}

export type BatchOperation = { type: 'put'; key: Buffer; value: Buffer } | { type: 'delete'; key: Buffer }

export type Entry = [key: Buffer, value: Buffer]

export interface ByteStore {
  /** Makes the store usable; idempotent. After close(), opens it again (a persistent store with its data). */
  open(): Promise<void>
  /** Releases files and memory; idempotent. Every other call then rejects with WEIR_ERR_CLOSED until open(). */
  close(): Promise<void>
  /** The value, or undefined when the key is absent (an empty Buffer is a value). */
  get(key: Buffer): Promise<Buffer | undefined>
  /** Point reads of many keys in one call (one round trip where a call has a fixed cost); same order as `keys`. */
  getMany(keys: readonly Buffer[]): Promise<Array<Buffer | undefined>>
  /** One write; the runtime prefers write() so a commit is one atomic step. */
  put(key: Buffer, value: Buffer): Promise<void>
  /** Removes the key; removing an absent key is not an error. */
  delete(key: Buffer): Promise<void>
  /**
   * Applies every operation or none (a commit's store writes), in order, so a later operation on a key wins.
   * On a persistent store the batch survives a process crash once the promise resolves.
   */
  write(operations: readonly BatchOperation[]): Promise<void>
  /**
   * Entries within the bounds, in key order. A scan sees the store as it was at its first step: writes made
   * while it runs do not show up in it. Leaving the loop early releases the scan.
   */
  range(range?: KeyRange): AsyncIterable<Entry>
  /** Entries whose key starts with `prefix` (all entries for an empty prefix); a range scan underneath. */
  prefix(prefix: Buffer, options?: Pick<KeyRange, 'reverse' | 'limit'>): AsyncIterable<Entry>
  /** The number of keys, cheaply: exact in memory, RocksDB's estimate on disk (for metrics and sizing, not logic). */
  approximateCount(): Promise<number>
  /** Removes every entry, the store stays open (a partition's state being rebuilt from its changelog). */
  clear(): Promise<void>
  /** Closes the store and deletes what it keeps (its folder on disk); open() afterwards starts empty. */
  destroy(): Promise<void>
}

/** The smallest key greater than every key starting with `prefix`; undefined when there is none (empty or all 0xff). */
export function prefixUpperBound(prefix: Buffer): Buffer | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i] as number
    if (byte < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1))
      end[i] = byte + 1
      return end
    }
  }
  return undefined
}

/** The range of keys starting with `prefix`. */
export function prefixRange(prefix: Buffer, options: Pick<KeyRange, 'reverse' | 'limit'> = {}): KeyRange {
  const upper = prefixUpperBound(prefix)
  const range: KeyRange = { gte: Buffer.from(prefix), ...options }
  if (upper !== undefined) range.lt = upper
  return range
}
