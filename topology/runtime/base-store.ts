// What the runtime needs from a committed (local) store: the key-value stores in state/ provide it.
export interface RangeOptions {
  gte?: Buffer
  gt?: Buffer
  lte?: Buffer
  lt?: Buffer
  reverse?: boolean
  limit?: number
}

export type BatchOperation = { type: 'put'; key: Buffer; value: Buffer } | { type: 'delete'; key: Buffer }

export interface BaseStore {
  get(key: Buffer): Promise<Buffer | undefined>
  range(options?: RangeOptions): AsyncIterable<[Buffer, Buffer]>
  write(operations: readonly BatchOperation[]): Promise<void>
  approximateCount(): Promise<number>
}
