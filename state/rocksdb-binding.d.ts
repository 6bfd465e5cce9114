// The part of @nxtedition/rocksdb's API weir uses (the package ships no types).
declare module '@nxtedition/rocksdb' {
  type BatchOp<K, V> = { type: 'put'; key: K; value: V } | { type: 'del'; key: K }
  interface IteratorOptions<K> {
    gt?: K
    gte?: K
    lt?: K
    lte?: K
    reverse?: boolean
    limit?: number
  }
  interface ChainedBatch<K, V> {
    put(key: K, value: V): this
    del(key: K): this
    write(options?: { sync?: boolean }): Promise<void>
    close(): Promise<void>
  }
  export class RocksLevel<K = Buffer, V = Buffer> {
    constructor(location: string, options?: { keyEncoding?: string; valueEncoding?: string })
    readonly status: 'opening' | 'open' | 'closing' | 'closed'
    open(options?: Record<string, unknown>): Promise<void>
    close(): Promise<void>
    put(key: K, value: V): Promise<void>
    del(key: K): Promise<void>
    getMany(keys: K[]): Promise<Array<V | undefined>>
    batch(operations: Array<BatchOp<K, V>>, options?: { sync?: boolean }): Promise<void>
    batch(): ChainedBatch<K, V>
    iterator(options?: IteratorOptions<K>): AsyncIterable<[K, V]>
    clear(options?: IteratorOptions<K>): Promise<void>
    getProperty(property: string): string
    /**
     * Undocumented (underscore): a multi-get on the calling thread; undefined: missing, null: aborted.
     * Crashes the process (segfault) on a closed database.
     */
    _getManySync?(keys: K[]): Array<V | null | undefined>
  }
}
