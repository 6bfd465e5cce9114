// The key-value store a task's state lives in. Keys and values are bytes; keys are ordered byte-wise.
// Kept as small as Kafka Streams' KeyValueStore: the runtime layers typed views, staging and changelogs on top.

export interface KeyRange {
  gte?: Buffer
  gt?: Buffer
  lte?: Buffer
  lt?: Buffer
  /** Descending key order. */
  reverse?: boolean
  /** At most this many entries. */
  limit?: number
}

export type BatchOperation = { type: 'put'; key: Buffer; value: Buffer } | { type: 'delete'; key: Buffer }

export interface KeyValueStore {
  get(key: Buffer): Promise<Buffer | undefined>
  /** Point reads of many keys at once (one round trip for stores that have a cost per call). */
  getMany(keys: readonly Buffer[]): Promise<Array<Buffer | undefined>>
  put(key: Buffer, value: Buffer): Promise<void>
  delete(key: Buffer): Promise<void>
  /** Applies every operation atomically, in order (a later operation on a key wins). */
  write(operations: readonly BatchOperation[]): Promise<void>
  /** Entries within the bounds, in key order. */
  range(range?: KeyRange): AsyncIterable<[Buffer, Buffer]>
  /** Entries whose key starts with `prefix`. */
  prefix(prefix: Buffer): AsyncIterable<[Buffer, Buffer]>
  /** A cheap estimate of the number of keys (exact for the memory store). */
  approximateCount(): Promise<number>
  /** Removes every entry (a partition's state being rebuilt from its changelog). */
  clear(): Promise<void>
  close(): Promise<void>
}

/** The smallest key greater than every key starting with `prefix`; undefined when there is none (all 0xff). */
export function prefixUpperBound(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1
      return end.subarray(0, i + 1)
    }
  }
  return undefined
}

export function prefixRange(prefix: Buffer): KeyRange {
  const upper = prefixUpperBound(prefix)
  return upper === undefined ? { gte: prefix } : { gte: prefix, lt: upper }
}
