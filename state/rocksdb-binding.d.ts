// The part of @nxtedition/rocksdb's API weir uses (the package ships no types).
declare module '@nxtedition/rocksdb' {
  type BatchOp<K, V> = { type: 'put'; key: K; value: V } | { type: 'del'; key: K }
  export class RocksLevel<K = Buffer, V = Buffer> {
    constructor(location: string, options?: { keyEncoding?: string; valueEncoding?: string })
    open(options?: Record<string, unknown>): Promise<void>
    close(): Promise<void>
    put(key: K, value: V): Promise<void>
    del(key: K): Promise<void>
    getMany(keys: K[]): Promise<Array<V | undefined>>
    batch(operations: Array<BatchOp<K, V>>): Promise<void>
    iterator(options?: Record<string, unknown>): AsyncIterable<[K, V]>
    clear(options?: Record<string, unknown>): Promise<void>
    getProperty(property: string): string
  }
}
