// What a processor sees of its task: the ProcessorContext (forwarding, its declared stores as typed views over
// the task's write buffers, punctuations, timers, commit requests) and the typed store view itself.
import { WeirError } from '../../core/errors.ts'
import { prefixUpperBound } from '../../state/kv-store.ts'
import type { ProcessorSpec, StoreSpec } from '../define.ts'
import type { Cancellable, KeyValueEntry, KeyValueStore, ProcessorContext, RangeQuery, RecordMetadata, TimerService } from '../processor.ts'
import type { StreamRecord } from '../record.ts'
import { resolveSerde } from '../serde.ts'
import type { WriteBuffer } from './write-buffer.ts'

/** What the task lends each processor's context. */
export interface ContextHost {
  readonly applicationId: string
  readonly taskId: string
  readonly partition: number
  children(node: string): readonly string[]
  deliver(node: string, record: StreamRecord, metadata: RecordMetadata | undefined): Promise<void>
  /** Where the record being handled came from (undefined in timers and punctuations). */
  metadata(): RecordMetadata | undefined
  storeView(name: string): KeyValueStore<unknown, unknown>
  schedule(node: string, intervalMs: number, type: 'wall-clock' | 'stream-time', callback: (timestamp: number) => void | Promise<void>): Cancellable
  timers(node: string): TimerService | undefined
  requestCommit(): void
  now(): number
}

export function createProcessorContext(host: ContextHost, name: string, spec: ProcessorSpec): ProcessorContext {
  const allowed = new Set(spec.stores ?? [])
  const storeViews = new Map<string, KeyValueStore<unknown, unknown>>()
  const noTimers: TimerService = {
    set: () => Promise.reject(new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} has no timers: declare timers: true`)),
    cancel: () => Promise.reject(new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} has no timers: declare timers: true`)),
    get: () => Promise.reject(new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} has no timers: declare timers: true`)),
  }
  return {
    applicationId: host.applicationId,
    taskId: host.taskId,
    partition: host.partition,
    processorName: name,
    forward: async (record, child) => {
      const children = host.children(name)
      if (child !== undefined && !children.includes(child)) {
        throw new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} has no child ${child} (children: ${children.join(', ')})`)
      }
      const metadata = host.metadata()
      for (const target of child === undefined ? children : [child]) await host.deliver(target, record, metadata)
    },
    store: <K, V>(storeName: string): KeyValueStore<K, V> => {
      if (!allowed.has(storeName)) {
        throw new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} did not declare store ${storeName} (stores: [${[...allowed].join(', ')}])`)
      }
      let view = storeViews.get(storeName)
      if (view === undefined) {
        view = host.storeView(storeName)
        storeViews.set(storeName, view)
      }
      return view as KeyValueStore<K, V>
    },
    schedule: (intervalMs, type, callback): Cancellable => {
      if (!(intervalMs > 0)) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'schedule: intervalMs must be > 0')
      return host.schedule(name, intervalMs, type, callback)
    },
    timers: host.timers(name) ?? noTimers,
    recordMetadata: () => host.metadata(),
    commit: () => host.requestCommit(),
    now: () => host.now(),
  }
}

/** A store as a processor sees it: keys and values through the store's serdes, over the task's write buffer. */
export function typedStoreView(name: string, buffer: WriteBuffer, spec: StoreSpec): KeyValueStore<unknown, unknown> {
  const keySerde = resolveSerde(spec.keySerde, 'string')
  const valueSerde = resolveSerde(spec.valueSerde, 'msgpack')
  const encodeKey = (key: unknown): Buffer => {
    const bytes = keySerde.serialize(key)
    if (bytes === null) throw new WeirError('WEIR_ERR_STATE_STORE', `store ${name}: keys cannot be null`)
    return bytes
  }
  const entries = async function* (iterable: AsyncIterable<[Buffer, Buffer]>): AsyncGenerator<KeyValueEntry<unknown, unknown>> {
    for await (const [k, v] of iterable) yield { key: keySerde.deserialize(k), value: valueSerde.deserialize(v) }
  }
  return {
    async get(key) {
      const bytes = await buffer.get(encodeKey(key))
      return bytes === undefined ? undefined : valueSerde.deserialize(bytes)
    },
    async put(key, value) {
      const bytes = valueSerde.serialize(value)
      if (bytes === null) buffer.delete(encodeKey(key))
      else buffer.put(encodeKey(key), bytes)
    },
    async delete(key) {
      buffer.delete(encodeKey(key))
    },
    range(query: RangeQuery<unknown> = {}) {
      return entries(
        buffer.range({
          ...(query.gte === undefined ? {} : { gte: encodeKey(query.gte) }),
          ...(query.gt === undefined ? {} : { gt: encodeKey(query.gt) }),
          ...(query.lte === undefined ? {} : { lte: encodeKey(query.lte) }),
          ...(query.lt === undefined ? {} : { lt: encodeKey(query.lt) }),
          ...(query.reverse === undefined ? {} : { reverse: query.reverse }),
          ...(query.limit === undefined ? {} : { limit: query.limit }),
        }),
      )
    },
    prefix(prefix) {
      const start = encodeKey(prefix)
      const end = prefixUpperBound(start)
      return entries(buffer.range(end === undefined ? { gte: start } : { gte: start, lt: end }))
    },
    approximateCount: () => buffer.base.approximateCount(),
  }
}
