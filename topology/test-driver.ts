// Runs a topology in-process without Kafka: pipe input records, advance wall-clock time, read outputs,
// inspect stores. The same Task code runs as on Kafka; every input and every time step is committed at once.
import { WeirError } from '../core/errors.ts'
import { createMemoryStore } from '../state/memory-store.ts'
import type { OutgoingRecord } from '../kafka/types.ts'
import type { Topology } from './define.ts'
import type { KeyValueEntry } from './processor.ts'
import type { StreamRecord } from './record.ts'
import type { ByteStore } from '../state/kv-store.ts'
import { Task } from './runtime/task.ts'
import type { ErrorPolicy } from './runtime/error-policy.ts'
import { resolveSerde } from './serde.ts'

export interface TestDriverOptions {
  applicationId?: string
  partition?: number
  /** Initial wall-clock time, ms since the epoch (default 0). */
  startTime?: number
  errorPolicy?: ErrorPolicy
  deadLetterTopic?: (sourceTopic: string) => string
  /** Creates the committed store behind each store name (default: an in-memory store). */
  createStore?: (name: string) => ByteStore
}

export interface PipeInput<K = unknown, V = unknown> {
  key?: K
  value: V
  timestamp?: number
  headers?: Record<string, string | Buffer>
}

export interface DriverOutput {
  readonly topic: string
  readonly partition: number | undefined
  /** Deserialized with the sink's serdes when the topic is a sink's fixed topic; raw bytes otherwise. */
  readonly key: unknown
  readonly value: unknown
  readonly headers: Readonly<Record<string, string>>
  readonly timestamp: number | undefined
}

export interface TestDriver {
  /** Feeds one record to the source with this name (or reading this topic). */
  pipe<K, V>(source: string, input: PipeInput<K, V>): Promise<void>
  /** Moves wall-clock time forward, firing due timers and wall-clock punctuations. */
  advanceTime(ms: number): Promise<void>
  /**
   * Moves the clock forward without firing anything, as when processing a record takes that long (a slow
   * handler); what fell due meanwhile fires at the next advanceTime.
   */
  elapse(ms: number): void
  now(): number
  /** Outputs produced so far (optionally of one topic), oldest first; `take` removes them. */
  outputs(topic?: string): DriverOutput[]
  take(topic?: string): DriverOutput[]
  /** Reads a store's committed content. */
  storeEntries<K = unknown, V = unknown>(name: string): Promise<Array<KeyValueEntry<K, V>>>
  readonly counters: Task['counters']
  close(): Promise<void>
}

export async function createTestDriver(topology: Topology, options: TestDriverOptions = {}): Promise<TestDriver> {
  let clock = options.startTime ?? 0
  const stores = new Map<string, ByteStore>()
  for (const name of Object.keys(topology.stores)) stores.set(name, options.createStore?.(name) ?? createMemoryStore())
  const offsets = new Map<string, bigint>()
  const partition = options.partition ?? 0
  const task = new Task({
    applicationId: options.applicationId ?? 'test-driver',
    partition,
    topology,
    stores,
    now: () => clock,
    errorPolicy: options.errorPolicy ?? 'fail',
    deadLetterTopic: options.deadLetterTopic ?? ((topic) => `${topic}.dlq`),
    positions: new Map(topology.sourceTopics.map((t) => [t, 0n])),
  })
  await task.init()
  let collected: DriverOutput[] = []

  const sinkSerdes = new Map<string, { key: ReturnType<typeof resolveSerde>; value: ReturnType<typeof resolveSerde> }>()
  for (const sink of Object.values(topology.sinks)) {
    if (typeof sink.topic === 'string') sinkSerdes.set(sink.topic, { key: resolveSerde(sink.keySerde, 'buffer'), value: resolveSerde(sink.valueSerde, 'buffer') })
  }
  const decode = (record: OutgoingRecord): DriverOutput => {
    const serdes = sinkSerdes.get(record.topic)
    const bytes = (v: Buffer | string | null | undefined) => (v === null || v === undefined ? undefined : typeof v === 'string' ? Buffer.from(v) : v)
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(record.headers ?? {})) headers[k] = v.toString()
    return {
      topic: record.topic,
      partition: record.partition,
      key: serdes === undefined ? bytes(record.key) : serdes.key.deserialize(bytes(record.key)),
      value: serdes === undefined ? bytes(record.value) : serdes.value.deserialize(bytes(record.value)),
      headers,
      timestamp: record.timestamp === undefined ? undefined : Number(record.timestamp),
    }
  }
  const commit = async () => {
    collected.push(...task.commitPlan().outputs.map(decode))
    await task.committed()
  }

  return {
    async pipe(sourceOrTopic, input) {
      const [name, source] =
        Object.entries(topology.sources).find(([n, s]) => n === sourceOrTopic || s.topic === sourceOrTopic) ??
        (() => {
          throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `no source named or reading ${sourceOrTopic}`)
        })()
      const keySerde = resolveSerde(source.keySerde, 'buffer')
      const valueSerde = resolveSerde(source.valueSerde, 'buffer')
      const offset = offsets.get(source.topic) ?? 0n
      offsets.set(source.topic, offset + 1n)
      const headers = new Map<string, Buffer>()
      for (const [k, v] of Object.entries(input.headers ?? {})) headers.set(k, typeof v === 'string' ? Buffer.from(v) : v)
      void name
      await task.process({
        topic: source.topic,
        partition,
        offset,
        timestamp: BigInt(input.timestamp ?? clock),
        key: input.key === undefined ? undefined : (keySerde.serialize(input.key) ?? undefined),
        value: valueSerde.serialize(input.value) ?? undefined,
        headers,
      })
      await commit()
    },
    async advanceTime(ms) {
      const target = clock + ms
      // Step through due timers in order so each onTimer sees its own due time as "now" at the latest.
      clock = target
      while ((await task.fireTimers(clock)) > 0) await commit()
      await task.punctuate(clock)
      await commit()
    },
    elapse(ms) {
      clock += ms
    },
    now: () => clock,
    outputs: (topic) => collected.filter((o) => topic === undefined || o.topic === topic),
    take(topic) {
      const taken = collected.filter((o) => topic === undefined || o.topic === topic)
      collected = collected.filter((o) => !(topic === undefined || o.topic === topic))
      return taken
    },
    async storeEntries<K, V>(name: string) {
      const store = stores.get(name)
      const spec = topology.stores[name]
      if (store === undefined || spec === undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `no store ${name}`)
      const keySerde = resolveSerde(spec.keySerde, 'string')
      const valueSerde = resolveSerde(spec.valueSerde, 'msgpack')
      const entries: Array<KeyValueEntry<K, V>> = []
      for await (const [k, v] of store.range()) entries.push({ key: keySerde.deserialize(k) as K, value: valueSerde.deserialize(v) as V })
      return entries
    },
    counters: task.counters,
    close: () => task.close(),
  }
}

export type { StreamRecord }
