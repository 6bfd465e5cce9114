// The part of rocksdb-native's API the binding benchmark uses (the package ships no types).
declare module 'rocksdb-native' {
  interface WriteBatch {
    tryPut(key: Buffer, value: Buffer): void
    tryDelete(key: Buffer): void
    flush(): Promise<void>
    destroy(): void
  }
  interface ReadBatch {
    get(key: Buffer): Promise<Buffer | null>
    tryFlush(): void
    destroy(): void
  }
  export default class RocksDB {
    constructor(path: string, options?: Record<string, unknown>)
    ready(): Promise<void>
    close(): Promise<void>
    write(options?: { capacity?: number }): WriteBatch
    read(options?: { capacity?: number }): ReadBatch
    iterator(range?: Record<string, unknown>): AsyncIterable<unknown>
  }
}
