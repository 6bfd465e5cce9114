// The part of rocksdb-native's API the binding benchmark uses (the package ships no types).
declare module 'rocksdb-native' {
  export interface WriteBatch {
    tryPut(key: Buffer, value: Buffer): void
    tryDelete(key: Buffer): void
    flush(): Promise<void>
    destroy(): void
  }
  export interface ReadBatch {
    get(key: Buffer): Promise<Buffer | null>
    flush(): Promise<void>
    tryFlush(): void
    destroy(): void
  }
  interface IteratorRange {
    gt?: Buffer
    gte?: Buffer
    lt?: Buffer
    lte?: Buffer
    reverse?: boolean
    limit?: number
  }
  export default class RocksDB {
    constructor(path: string, options?: Record<string, unknown>)
    ready(): Promise<void>
    close(): Promise<void>
    get(key: Buffer): Promise<Buffer | null>
    write(options?: { capacity?: number }): WriteBatch
    read(options?: { capacity?: number }): ReadBatch
    iterator(range?: IteratorRange, options?: { capacity?: number }): AsyncIterable<{ key: Buffer; value: Buffer }>
  }
}
