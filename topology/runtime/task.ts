// One task: the topology instantiated for one input partition. It knows nothing of Kafka transactions:
// it turns input records and due timers into outputs and store writes, and hands them over at commit time.
// The Kafka runtime (stream-runtime.ts) and the test driver (test-driver.ts) both drive it.
import { Packr } from 'msgpackr'

import { WeirError, isWeirError } from '../../core/errors.ts'
import type { BatchOperation, ByteStore } from '../../state/kv-store.ts'
import { prefixUpperBound } from '../../state/kv-store.ts'
import type { ConsumedRecord, OutgoingRecord } from '../../kafka/types.ts'
import { timerStoreName } from '../define.ts'
import type { ProcessorSpec, SinkSpec, Topology } from '../define.ts'
import type {
  Cancellable,
  FiredTimer,
  KeyValueEntry,
  KeyValueStore,
  Processor,
  ProcessorContext,
  RangeQuery,
  RecordMetadata,
  TimerService,
} from '../processor.ts'
import { StreamRecord } from '../record.ts'
import { resolveSerde } from '../serde.ts'
import type { Serde } from '../serde.ts'
import { DEFAULT_MAX_MESSAGE_BYTES, deadLetterHeaders, fitDeadLetter, isDeadLetter } from './dead-letter.ts'
import { DurableTimers } from './timers.ts'
import type { DueTimer } from './timers.ts'
import { WriteBuffer } from './write-buffer.ts'

export type ErrorPolicy = 'dead-letter' | 'skip' | 'fail'

export interface TaskOptions {
  applicationId: string
  partition: number
  topology: Topology
  /** Committed stores of this task, by store name (timer stores included). */
  stores: ReadonlyMap<string, ByteStore>
  now: () => number
  errorPolicy: ErrorPolicy
  deadLetterTopic: (sourceTopic: string) => string
  /** Next offset to process per source topic. */
  positions: ReadonlyMap<string, bigint>
  /** Timers fired per call of fireTimers, so input is not starved. */
  maxTimersPerRound?: number
  /** The largest record a topic accepts (its max.message.bytes), so every dead letter fits (default 1 MiB + 12). */
  maxRecordBytes?: (topic: string) => number
  /**
   * Records the error policy is applied to without processing them (their offset made the task fail again and
   * again, see the runtime): dead-lettered with this error, or skipped.
   */
  poisoned?: ReadonlyArray<{ topic: string; offset: bigint; error: WeirError; attempts: number }>
}

/** What the task did, counted when the commit that carried it succeeded (never what a failed commit dropped). */
export interface TaskCounters {
  processed: number
  deadLettered: number
  skipped: number
  timersFired: number
  outputs: number
}

export interface CommitPlan {
  outputs: OutgoingRecord[]
  /** Final operation per key of every store since the last commit. */
  storeWrites: Map<string, BatchOperation[]>
  /** Next offset per source topic of this task's partition. */
  positions: Map<string, bigint>
}

interface Punctuation {
  interval: number
  type: 'wall-clock' | 'stream-time'
  next: number
  callback: (timestamp: number) => void | Promise<void>
  node: string
  cancelled: boolean
}

interface SinkRuntime {
  spec: SinkSpec
  key: Serde<unknown>
  value: Serde<unknown>
}

interface Current {
  metadata: RecordMetadata | undefined
  node: string
}

const packr = new Packr({ useRecords: false, moreTypes: false })

const zeroCounters = (): TaskCounters => ({ processed: 0, deadLettered: 0, skipped: 0, timersFired: 0, outputs: 0 })

function addCounters(to: TaskCounters, from: TaskCounters): void {
  to.processed += from.processed
  to.deadLettered += from.deadLettered
  to.skipped += from.skipped
  to.timersFired += from.timersFired
  to.outputs += from.outputs
}

export class Task {
  readonly id: string
  readonly partition: number
  readonly counters: TaskCounters = zeroCounters()
  /** Counted since the last commit plan, and in the plan in flight: added to `counters` when it commits. */
  #pending: TaskCounters = zeroCounters()
  #inFlight: TaskCounters = zeroCounters()
  /** Input records processed and not yet committed (since the last commit plan, plus the plan in flight). */
  get uncommittedRecords(): number {
    return this.#pending.processed + this.#inFlight.processed
  }
  readonly #options: TaskOptions
  readonly #buffers = new Map<string, WriteBuffer>()
  readonly #timers = new Map<string, DurableTimers>()
  readonly #processors = new Map<string, Processor>()
  readonly #contexts = new Map<string, ProcessorContext>()
  readonly #sinks = new Map<string, SinkRuntime>()
  readonly #sources = new Map<string, { name: string; key: Serde<unknown>; value: Serde<unknown> }>()
  readonly #positions: Map<string, bigint>
  readonly #committedPositions: Map<string, bigint>
  /** Positions the commit in flight carries (undefined: no commit in flight). */
  #committingPositions: Map<string, bigint> | undefined
  #outputs: OutgoingRecord[] = []
  /** While a record or timer is being handled: where its outputs start in #outputs (-1 otherwise). */
  #stageMark = -1
  #punctuations: Punctuation[] = []
  #streamTime = -1
  #current: Current = { metadata: undefined, node: '' }
  #commitRequested = false
  #failingNode: string | undefined
  #dirty = false
  #initialized = false

  constructor(options: TaskOptions) {
    this.#options = options
    this.partition = options.partition
    this.id = `${options.applicationId}-${options.partition}`
    this.#positions = new Map(options.positions)
    this.#committedPositions = new Map(options.positions)
    const { topology } = options
    for (const [name, base] of options.stores) this.#buffers.set(name, new WriteBuffer(base))
    for (const [name, spec] of Object.entries(topology.sources)) {
      this.#sources.set(spec.topic, { name, key: resolveSerde(spec.keySerde, 'buffer'), value: resolveSerde(spec.valueSerde, 'buffer') })
    }
    for (const [name, spec] of Object.entries(topology.sinks)) {
      this.#sinks.set(name, { spec, key: resolveSerde(spec.keySerde, 'buffer'), value: resolveSerde(spec.valueSerde, 'buffer') })
    }
    for (const name of topology.order) {
      const spec = topology.processors[name] as ProcessorSpec
      if (spec.timers) {
        const buffer = this.#buffers.get(timerStoreName(name))
        if (buffer === undefined) throw new WeirError('WEIR_ERR_STATE_STORE', `task ${this.id}: timer store of ${name} is missing`)
        this.#timers.set(name, new DurableTimers(buffer))
      }
      this.#processors.set(name, spec.use())
      this.#contexts.set(name, this.#makeContext(name, spec))
    }
  }

  /** Calls every processor's init, parents first. */
  async init(): Promise<void> {
    if (this.#initialized) return
    this.#initialized = true
    for (const name of this.#options.topology.order) {
      this.#current = { metadata: undefined, node: name }
      await this.#processors.get(name)?.init?.(this.#contexts.get(name) as ProcessorContext)
    }
  }

  async close(): Promise<void> {
    for (const name of [...this.#options.topology.order].reverse()) {
      try {
        await this.#processors.get(name)?.close?.()
      } catch {
        // A processor failing to close must not keep the others open.
      }
    }
  }

  /** Next offset to process for a source topic. */
  position(topic: string): bigint | undefined {
    return this.#positions.get(topic)
  }

  /** Moves the position forward (past control markers the records did not show); never back. */
  advance(topic: string, offset: bigint): void {
    const current = this.#positions.get(topic)
    if (current === undefined || offset > current) {
      this.#positions.set(topic, offset)
      this.#dirty = true
    }
  }

  get commitRequested(): boolean {
    return this.#commitRequested
  }

  /** Anything to commit: processed input, fired timers, or writes. */
  get dirty(): boolean {
    return this.#dirty
  }

  /** Processes one input record: the whole subtree runs, or (on error) none of its effects stay. */
  async process(consumed: ConsumedRecord): Promise<void> {
    const position = this.#positions.get(consumed.topic)
    if (position !== undefined && consumed.offset < position) return // already processed (a re-fetch)
    const source = this.#sources.get(consumed.topic)
    if (source === undefined) throw new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `task ${this.id}: no source reads ${consumed.topic}`)
    const poisoned = this.#options.poisoned?.find((p) => p.topic === consumed.topic && p.offset === consumed.offset)
    if (poisoned !== undefined) {
      this.#handleFailure(poisoned.error, '(commit)', consumed, undefined, poisoned.attempts)
      this.#positions.set(consumed.topic, consumed.offset + 1n)
      this.#dirty = true
      return
    }
    const timestamp = Number(consumed.timestamp)
    if (timestamp > this.#streamTime) this.#streamTime = timestamp
    const metadata: RecordMetadata = {
      topic: consumed.topic,
      partition: consumed.partition,
      offset: consumed.offset,
      timestamp,
      headers: consumed.headers,
    }
    this.#beginStage()
    this.#failingNode = undefined
    try {
      let key: unknown
      let value: unknown
      try {
        key = source.key.deserialize(consumed.key)
        value = source.value.deserialize(consumed.value)
      } catch (cause) {
        throw isWeirError(cause)
          ? cause
          : new WeirError('WEIR_ERR_DESERIALIZATION', `cannot deserialize ${consumed.topic}[${consumed.partition}]@${consumed.offset}`, { cause })
      }
      const record = new StreamRecord(key, value, timestamp, consumed.headers)
      this.#current = { metadata, node: source.name }
      for (const child of this.#options.topology.children.get(source.name) ?? []) await this.#deliver(child, record, metadata)
      this.#commitStage()
      this.#pending.processed++
    } catch (error) {
      this.#discardStage()
      this.#handleFailure(error, this.#failingNode ?? source.name, consumed)
    } finally {
      this.#positions.set(consumed.topic, consumed.offset + 1n)
      this.#dirty = true
      this.#current = { metadata: undefined, node: '' }
    }
    if (this.#streamTime >= 0) await this.#punctuate('stream-time', this.#streamTime)
  }

  /** Fires timers due at `now` (at most maxTimersPerRound); returns how many fired. */
  async fireTimers(now: number): Promise<number> {
    let fired = 0
    const budget = this.#options.maxTimersPerRound ?? 1000
    for (const [name, timers] of this.#timers) {
      if (fired >= budget) break
      const due = await timers.due(now, budget - fired)
      for (const timer of due) {
        await this.#fire(name, timers, timer, now)
        fired++
      }
    }
    if (fired > 0) this.#dirty = true
    this.#pending.timersFired += fired
    return fired
  }

  /** The earliest time a timer or a wall-clock punctuation of this task is due (Infinity: nothing scheduled). */
  async nextDue(): Promise<number> {
    let next = Infinity
    for (const timers of this.#timers.values()) {
      const at = await timers.nextAt()
      if (at !== undefined && at < next) next = at
    }
    for (const p of this.#punctuations) if (!p.cancelled && p.type === 'wall-clock' && p.next < next) next = p.next
    return next
  }

  /** Runs due wall-clock punctuations. */
  async punctuate(now: number): Promise<void> {
    await this.#punctuate('wall-clock', now)
  }

  /** Outputs and store writes waiting for the next commit plan (what processing during a commit adds up). */
  get uncommitted(): number {
    let writes = 0
    for (const buffer of this.#buffers.values()) writes += buffer.pendingSize
    return this.#outputs.length + writes
  }

  /** True between commitPlan() and committed() (or rollback()). */
  get committing(): boolean {
    return this.#committingPositions !== undefined
  }

  /**
   * Everything since the last commit plan, handed over for a commit, and a new commit interval: the task may
   * go on processing while the caller commits the plan to Kafka; it then calls committed() (or rollback()).
   * Called between records and timers, never while one is being handled; one plan at a time.
   */
  commitPlan(): CommitPlan {
    if (this.#committingPositions !== undefined) throw new WeirError('WEIR_ERR_STATE_STORE', `task ${this.id}: the previous commit plan is still in flight`)
    if (this.#stageMark >= 0) throw new WeirError('WEIR_ERR_STATE_STORE', `task ${this.id}: cannot plan a commit while a record is being processed`)
    const storeWrites = new Map<string, BatchOperation[]>()
    for (const [name, buffer] of this.#buffers) storeWrites.set(name, buffer.seal())
    const positions = new Map(this.#positions)
    const outputs = this.#outputs
    this.#outputs = []
    this.#committingPositions = positions
    this.#pending.outputs += outputs.length
    // Every dead letter in the plan, whoever wrote it (the error policy here, or a processor such as the router).
    for (const output of outputs) if (isDeadLetter(output)) this.#pending.deadLettered++
    this.#inFlight = this.#pending
    this.#pending = zeroCounters()
    this.#commitRequested = false
    this.#dirty = false
    return { outputs, storeWrites, positions: new Map(positions) }
  }

  /** The plan's Kafka commit succeeded: make its store writes durable locally. */
  async committed(): Promise<void> {
    const positions = this.#committingPositions
    if (positions === undefined) return
    for (const buffer of this.#buffers.values()) await buffer.flushSealed()
    for (const [topic, offset] of positions) this.#committedPositions.set(topic, offset)
    this.#committingPositions = undefined
    addCounters(this.counters, this.#inFlight)
    this.#inFlight = zeroCounters()
  }

  /** The commit failed: forget everything since the last commit (the caller re-creates or rewinds the task). */
  rollback(): void {
    for (const buffer of this.#buffers.values()) buffer.clear()
    for (const timers of this.#timers.values()) timers.reset()
    this.#outputs = []
    this.#stageMark = -1
    this.#committingPositions = undefined
    this.#pending = zeroCounters()
    this.#inFlight = zeroCounters()
    this.#positions.clear()
    for (const [topic, offset] of this.#committedPositions) this.#positions.set(topic, offset)
    this.#dirty = false
  }

  async pendingTimers(): Promise<number> {
    let total = 0
    for (const timers of this.#timers.values()) total += await timers.pendingCount()
    return total
  }

  // ---- internals ----

  // Staging costs nothing per record unless the record writes: outputs are appended to #outputs and cut back
  // on failure; write buffers create their stage on the first write.
  #beginStage(): void {
    for (const buffer of this.#buffers.values()) buffer.beginStage()
    this.#stageMark = this.#outputs.length
  }

  #commitStage(): void {
    for (const buffer of this.#buffers.values()) buffer.commitStage()
    this.#stageMark = -1
  }

  #discardStage(): void {
    for (const buffer of this.#buffers.values()) buffer.discardStage()
    if (this.#stageMark >= 0) this.#outputs.length = this.#stageMark
    this.#stageMark = -1
  }

  #handleFailure(error: unknown, node: string, consumed: ConsumedRecord | undefined, timer?: { processor: string; timer: DueTimer }, attempts = 1): void {
    const wrapped = isWeirError(error)
      ? error
      : new WeirError('WEIR_ERR_PROCESSING', `processor ${node} failed: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
          details: { processor: node },
        })
    if (this.#options.errorPolicy === 'fail') throw wrapped
    if (this.#options.errorPolicy === 'skip') {
      this.#pending.skipped++
      return
    }
    if (consumed !== undefined) {
      this.#push({
        topic: this.#options.deadLetterTopic(consumed.topic),
        key: consumed.key ?? null,
        value: consumed.value ?? null,
        headers: deadLetterHeaders(wrapped, { ...consumed, processor: node, attempts }),
      })
    } else if (timer !== undefined) {
      const topic = `${this.#options.applicationId}-timers`
      this.#push({
        topic: this.#options.deadLetterTopic(topic),
        key: timer.timer.key,
        value: packr.pack({ at: timer.timer.at, payload: timer.timer.payload }),
        headers: deadLetterHeaders(wrapped, {
          topic,
          partition: this.partition,
          offset: -1n,
          timestamp: BigInt(timer.timer.at),
          processor: timer.processor,
          attempts: 1,
        }),
      })
    }
  }

  async #fire(name: string, timers: DurableTimers, timer: DueTimer, now: number): Promise<void> {
    const processor = this.#processors.get(name)
    const fired: FiredTimer = { key: timer.key, at: timer.at, payload: timer.payload, firedAt: now }
    this.#beginStage()
    this.#current = { metadata: undefined, node: name }
    try {
      timers.remove(timer)
      await processor?.onTimer?.(fired)
      this.#commitStage()
    } catch (error) {
      this.#discardStage()
      // The timer is handled either way: removed together with its dead letter (or skipped).
      timers.remove(timer)
      this.#handleFailure(error, name, undefined, { processor: name, timer })
    } finally {
      this.#current = { metadata: undefined, node: '' }
    }
  }

  async #deliver(node: string, record: StreamRecord, metadata: RecordMetadata | undefined): Promise<void> {
    const sink = this.#sinks.get(node)
    if (sink !== undefined) {
      this.#emit(sink, record)
      return
    }
    const processor = this.#processors.get(node)
    if (processor === undefined) return
    const previous = this.#current
    this.#current = { metadata, node }
    try {
      await processor.process(record)
    } catch (error) {
      // The innermost processor that threw is the one named in the dead-letter headers.
      this.#failingNode ??= node
      throw error
    } finally {
      this.#current = previous
    }
  }

  #emit(sink: SinkRuntime, record: StreamRecord): void {
    const topic = typeof sink.spec.topic === 'function' ? sink.spec.topic(record) : sink.spec.topic
    const key = sink.key.serialize(record.key)
    const partition = sink.spec.partition?.(record, { partition: this.partition }) ?? (key === null ? this.partition : undefined)
    const outgoing: OutgoingRecord = {
      topic,
      key,
      value: sink.value.serialize(record.value),
      timestamp: BigInt(Math.floor(record.timestamp)),
      ...(partition === undefined ? {} : { partition }),
      ...(record.headers.size > 0 ? { headers: Object.fromEntries(record.headers) } : {}),
    }
    this.#push(outgoing)
  }

  // Every output passes here: a dead letter (the runtime's or a processor's, such as the command router's) is
  // made to fit its topic, so it can never make the transaction fail.
  #push(record: OutgoingRecord): void {
    this.#outputs.push(isDeadLetter(record) ? fitDeadLetter(record, this.#options.maxRecordBytes?.(record.topic) ?? DEFAULT_MAX_MESSAGE_BYTES) : record)
  }

  async #punctuate(type: 'wall-clock' | 'stream-time', time: number): Promise<void> {
    if (this.#punctuations.length === 0) return
    let cancelled = false
    for (const p of this.#punctuations) {
      if (p.cancelled) cancelled = true
      if (p.cancelled || p.type !== type || time < p.next) continue
      p.next = time + p.interval
      this.#beginStage()
      this.#current = { metadata: undefined, node: p.node }
      try {
        await p.callback(time)
        this.#commitStage()
        this.#dirty = true
      } catch (error) {
        this.#discardStage()
        this.#handleFailure(error, p.node, undefined)
      } finally {
        this.#current = { metadata: undefined, node: '' }
      }
    }
    if (cancelled || this.#punctuations.some((p) => p.cancelled)) this.#punctuations = this.#punctuations.filter((p) => !p.cancelled)
  }

  #makeContext(name: string, spec: ProcessorSpec): ProcessorContext {
    const allowed = new Set(spec.stores ?? [])
    const storeViews = new Map<string, KeyValueStore<unknown, unknown>>()
    const noTimers: TimerService = {
      set: () => Promise.reject(new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} has no timers: declare timers: true`)),
      cancel: () => Promise.reject(new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} has no timers: declare timers: true`)),
      get: () => Promise.reject(new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} has no timers: declare timers: true`)),
    }
    return {
      applicationId: this.#options.applicationId,
      taskId: this.id,
      partition: this.partition,
      processorName: name,
      forward: async (record, child) => {
        const children = this.#options.topology.children.get(name) ?? []
        if (child !== undefined && !children.includes(child)) {
          throw new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} has no child ${child} (children: ${children.join(', ')})`)
        }
        const metadata = this.#current.metadata
        for (const target of child === undefined ? children : [child]) await this.#deliver(target, record, metadata)
      },
      store: <K, V>(storeName: string): KeyValueStore<K, V> => {
        if (!allowed.has(storeName)) {
          throw new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `processor ${name} did not declare store ${storeName} (stores: [${[...allowed].join(', ')}])`)
        }
        let view = storeViews.get(storeName)
        if (view === undefined) {
          view = this.#storeView(storeName)
          storeViews.set(storeName, view)
        }
        return view as KeyValueStore<K, V>
      },
      schedule: (intervalMs, type, callback): Cancellable => {
        if (!(intervalMs > 0)) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'schedule: intervalMs must be > 0')
        const start = type === 'wall-clock' ? this.#options.now() : Math.max(this.#streamTime, 0)
        const entry: Punctuation = { interval: intervalMs, type, next: start + intervalMs, callback, node: name, cancelled: false }
        this.#punctuations.push(entry)
        return {
          cancel() {
            entry.cancelled = true
          },
        }
      },
      timers: this.#timers.get(name) ?? noTimers,
      recordMetadata: () => this.#current.metadata,
      commit: () => {
        this.#commitRequested = true
      },
      now: () => this.#options.now(),
    }
  }

  #storeView(name: string): KeyValueStore<unknown, unknown> {
    const buffer = this.#buffers.get(name)
    const spec = this.#options.topology.stores[name]
    if (buffer === undefined || spec === undefined) throw new WeirError('WEIR_ERR_STATE_STORE', `task ${this.id}: store ${name} is not open`)
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
}
