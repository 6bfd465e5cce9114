// What the runtime needs from a committed (local) store: the key-value stores of state/.
import type { BatchOperation, KeyRange, KeyValueStore } from '../../state/kv-store.ts'

export type { BatchOperation }
export type RangeOptions = KeyRange
export type BaseStore = Pick<KeyValueStore, 'get' | 'range' | 'write' | 'approximateCount'>
