// One task: the topology instantiated for one input partition. It knows nothing of Kafka transactions:
// it turns input records and due timers into outputs and store writes, and hands them over at commit time.
// The Kafka runtime (stream-runtime.ts) and the test driver (test-driver.ts) both drive it.
import { WeirError } from '../../core/errors.ts'
import type { ConsumedRecord, OutgoingRecord } from '../../kafka/types.ts'
import type { BatchOperation, ByteStore } from '../../state/kv-store.ts'
import { timerStoreName } from '../define.ts'
import type { ProcessorSpec, Topology } from '../define.ts'
import type { FiredTimer, Processor, ProcessorContext, RecordMetadata } from '../processor.ts'
import { StreamRecord } from '../record.ts'
import { isDeadLetter } from '../dead-letter.ts'
import { DEFAULT_MAX_MESSAGE_BYTES, fitDeadLetter } from './dead-letter-fit.ts'
import { deadLetterOf, processingError } from './error-policy.ts'
import type { ErrorPolicy } from './error-policy.ts'
import { InFlight } from './in-flight.ts'
import type { ProcessingScope, RecordScope } from './in-flight.ts'
import { createProcessorContext, typedStoreView } from './processor-context.ts'
import type { ContextHost } from './processor-context.ts'
import { Punctuations } from './punctuations.ts'
import { addCounters, zeroCounters } from './task-counters.ts'
import { deserializeInput, sinkOutput, sinksOf, sourcesOf } from './task-io.ts'
import type { SinkRuntime, SourceRuntime } from './task-io.ts'
import type { CommitPlan, TaskCounters } from './task-counters.ts'
import { DurableTimers, ProcessorTimers } from './timers.ts'
import type { DueTimer } from './timers.ts'
import { WriteBuffer } from './write-buffer.ts'

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
  /** Input records processed at the same time through start() (default 1: process() only). */
  maxInFlight?: number
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
  readonly #timers = new ProcessorTimers()
  readonly #processors = new Map<string, Processor>()
  readonly #contexts = new Map<string, ProcessorContext>()
  readonly #sinks: Map<string, SinkRuntime>
  readonly #sources: Map<string, SourceRuntime>
  readonly #positions: Map<string, bigint>
  readonly #committedPositions: Map<string, bigint>
  /** Positions the commit in flight carries (undefined: no commit in flight). */
  #committingPositions: Map<string, bigint> | undefined
  #outputs: OutgoingRecord[] = []
  /** While a record or timer is being handled: where its outputs start in #outputs (-1 otherwise). */
  #stageMark = -1
  readonly #punctuations = new Punctuations()
  #streamTime = -1
  /** Where serial processing (process(), timers, punctuations) is; a concurrent record has its own scope. */
  readonly #serial: ProcessingScope = { current: { metadata: undefined, node: '' }, failingNode: undefined }
  /** Records processed concurrently (maxInFlight > 1). */
  readonly #concurrent: InFlight | undefined
  #commitRequested = false
  #dirty = false
  #initialized = false
  #host: ContextHost | undefined

  constructor(options: TaskOptions) {
    this.#options = options
    this.partition = options.partition
    this.id = `${options.applicationId}-${options.partition}`
    this.#positions = new Map(options.positions)
    this.#committedPositions = new Map(options.positions)
    const { topology } = options
    const concurrent = (options.maxInFlight ?? 1) > 1 ? new InFlight(options.maxInFlight as number) : undefined
    this.#concurrent = concurrent
    const scope = concurrent === undefined ? undefined : () => concurrent.scope()?.stage
    for (const [name, base] of options.stores) this.#buffers.set(name, new WriteBuffer(base, scope))
    this.#sources = sourcesOf(topology)
    this.#sinks = sinksOf(topology)
    for (const name of topology.order) {
      const spec = topology.processors[name] as ProcessorSpec
      if (spec.timers) {
        const buffer = this.#buffers.get(timerStoreName(name))
        if (buffer === undefined) throw new WeirError('WEIR_ERR_STATE_STORE', `task ${this.id}: timer store of ${name} is missing`)
        this.#timers.add(name, new DurableTimers(buffer))
      }
      this.#processors.set(name, spec.use())
      this.#contexts.set(name, createProcessorContext(this.#contextHost(), name, spec))
    }
  }

  /** Calls every processor's init, parents first. */
  async init(): Promise<void> {
    if (this.#initialized) return
    this.#initialized = true
    for (const name of this.#options.topology.order) {
      this.#serial.current = { metadata: undefined, node: name }
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
    const source = this.#admit(consumed)
    if (source === undefined) return
    const metadata = this.#metadataOf(consumed)
    this.#beginStage()
    this.#serial.failingNode = undefined
    try {
      this.#serial.current = { metadata, node: source.name }
      await this.#processSubtree(source, consumed, metadata)
      this.#commitStage()
      this.#pending.processed++
    } catch (error) {
      this.#discardStage()
      this.#handleFailure(error, this.#serial.failingNode ?? source.name, consumed)
    } finally {
      this.#positions.set(consumed.topic, consumed.offset + 1n)
      this.#dirty = true
      this.#serial.current = { metadata: undefined, node: '' }
    }
    if (this.#streamTime >= 0) await this.#punctuate('stream-time', this.#streamTime)
  }

  /** Records processed concurrently, when maxInFlight > 1 (then the loop feeds the task with start()). */
  get concurrent(): InFlight | undefined {
    return this.#concurrent
  }

  /** Records started and not finished. */
  get inFlight(): number {
    return this.#concurrent?.count ?? 0
  }

  /**
   * Starts processing one input record without waiting for it (maxInFlight > 1; the caller keeps below it):
   * after the previous record of its key, beside records of other keys. Its outputs and store writes join the
   * task when it finished; the position moves past it now, so the task must be drained before a commit plan.
   */
  start(consumed: ConsumedRecord): void {
    const concurrent = this.#concurrent
    if (concurrent === undefined) throw new WeirError('WEIR_ERR_STATE_STORE', `task ${this.id}: start() needs maxInFlight > 1`)
    const source = this.#admit(consumed)
    if (source === undefined) return
    const metadata = this.#metadataOf(consumed)
    this.#positions.set(consumed.topic, consumed.offset + 1n)
    this.#dirty = true
    concurrent.run(consumed.key, async (current) => {
      const scope: RecordScope = { current: { metadata, node: source.name }, failingNode: undefined, outputs: [], stage: new Map() }
      try {
        await concurrent.within(scope, () => this.#processSubtree(source, consumed, metadata))
        if (!current()) return
        for (const [buffer, writes] of scope.stage) buffer.applyStage(writes)
        for (const output of scope.outputs) this.#outputs.push(output)
        this.#pending.processed++
      } catch (error) {
        if (current()) this.#handleFailure(error, scope.failingNode ?? source.name, consumed)
      }
    })
  }

  /** Anything for fireTimers() or punctuate() to do at `now` (the loop drains the task first). */
  async dueAt(now: number): Promise<boolean> {
    if ((await this.nextDue()) <= now) return true
    return this.#concurrent !== undefined && this.#streamTime >= 0 && this.#punctuations.next('stream-time') <= this.#streamTime
  }

  /** The source of a record to process, or undefined when it needs no processing (a re-fetch, or poisoned). */
  #admit(consumed: ConsumedRecord): SourceRuntime | undefined {
    const position = this.#positions.get(consumed.topic)
    if (position !== undefined && consumed.offset < position) return undefined // already processed (a re-fetch)
    const source = this.#sources.get(consumed.topic)
    if (source === undefined) throw new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `task ${this.id}: no source reads ${consumed.topic}`)
    const poisoned = this.#options.poisoned?.find((p) => p.topic === consumed.topic && p.offset === consumed.offset)
    if (poisoned !== undefined) {
      this.#handleFailure(poisoned.error, '(commit)', consumed, undefined, poisoned.attempts)
      this.#positions.set(consumed.topic, consumed.offset + 1n)
      this.#dirty = true
      return undefined
    }
    return source
  }

  #metadataOf(consumed: ConsumedRecord): RecordMetadata {
    const timestamp = Number(consumed.timestamp)
    if (timestamp > this.#streamTime) this.#streamTime = timestamp
    return { topic: consumed.topic, partition: consumed.partition, offset: consumed.offset, timestamp, headers: consumed.headers }
  }

  async #processSubtree(source: SourceRuntime, consumed: ConsumedRecord, metadata: RecordMetadata): Promise<void> {
    const { key, value } = deserializeInput(source, consumed)
    const record = new StreamRecord(key, value, metadata.timestamp, consumed.headers)
    for (const child of this.#options.topology.children.get(source.name) ?? []) await this.#deliver(child, record, metadata)
  }

  /** Fires timers due at `now` (at most maxTimersPerRound); returns how many fired. */
  async fireTimers(now: number): Promise<number> {
    this.#assertDrained('fire timers')
    const budget = this.#options.maxTimersPerRound ?? 1000
    const fired = await this.#timers.fireDue(now, budget, (name, timers, timer) => this.#fire(name, timers, timer, now))
    if (fired > 0) this.#dirty = true
    this.#pending.timersFired += fired
    return fired
  }

  /** The earliest time a timer or a wall-clock punctuation of this task is due (Infinity: nothing scheduled). */
  async nextDue(): Promise<number> {
    return Math.min(await this.#timers.nextAt(), this.#punctuations.nextWallClock())
  }

  /** Runs due wall-clock punctuations. */
  async punctuate(now: number): Promise<void> {
    this.#assertDrained('punctuate')
    await this.#punctuate('wall-clock', now)
    // Stream-time punctuations wait for a moment with nothing in flight when records are processed concurrently.
    if (this.#concurrent !== undefined && this.#streamTime >= 0) await this.#punctuate('stream-time', this.#streamTime)
  }

  #assertDrained(what: string): void {
    if (this.inFlight > 0) throw new WeirError('WEIR_ERR_STATE_STORE', `task ${this.id}: cannot ${what} while records are in flight`)
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
    this.#assertDrained('plan a commit')
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
    this.#concurrent?.reset()
    for (const buffer of this.#buffers.values()) buffer.clear()
    this.#timers.reset()
    this.#outputs = []
    this.#stageMark = -1
    this.#committingPositions = undefined
    this.#pending = zeroCounters()
    this.#inFlight = zeroCounters()
    this.#positions.clear()
    for (const [topic, offset] of this.#committedPositions) this.#positions.set(topic, offset)
    this.#dirty = false
  }

  pendingTimers(): Promise<number> {
    return this.#timers.pendingCount()
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
    const wrapped = processingError(error, node)
    if (this.#options.errorPolicy === 'fail') throw wrapped
    if (this.#options.errorPolicy === 'skip') {
      this.#pending.skipped++
      return
    }
    const letter = deadLetterOf(wrapped, { node, consumed, timer, attempts }, { ...this.#options, partition: this.partition })
    if (letter !== undefined) this.#push(letter)
  }

  async #fire(name: string, timers: DurableTimers, timer: DueTimer, now: number): Promise<void> {
    const processor = this.#processors.get(name)
    const fired: FiredTimer = { key: timer.key, at: timer.at, payload: timer.payload, firedAt: now }
    this.#beginStage()
    this.#serial.current = { metadata: undefined, node: name }
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
      this.#serial.current = { metadata: undefined, node: '' }
    }
  }

  async #deliver(node: string, record: StreamRecord, metadata: RecordMetadata | undefined): Promise<void> {
    const sink = this.#sinks.get(node)
    if (sink !== undefined) {
      this.#push(sinkOutput(sink, record, this.partition))
      return
    }
    const processor = this.#processors.get(node)
    if (processor === undefined) return
    const at = this.#at()
    const previous = at.current
    at.current = { metadata, node }
    try {
      await processor.process(record)
    } catch (error) {
      // The innermost processor that threw is the one named in the dead-letter headers.
      at.failingNode ??= node
      throw error
    } finally {
      at.current = previous
    }
  }

  // Every output passes here: a dead letter (the runtime's or a processor's, such as the command router's) is
  // made to fit its topic, so it can never make the transaction fail.
  #push(record: OutgoingRecord): void {
    ;(this.#concurrent?.scope()?.outputs ?? this.#outputs).push(isDeadLetter(record) ? fitDeadLetter(record, this.#options.maxRecordBytes?.(record.topic) ?? DEFAULT_MAX_MESSAGE_BYTES) : record)
  }

  async #punctuate(type: 'wall-clock' | 'stream-time', time: number): Promise<void> {
    await this.#punctuations.run(type, time, async (node, call) => {
      this.#beginStage()
      this.#serial.current = { metadata: undefined, node }
      try {
        await call()
        this.#commitStage()
        this.#dirty = true
      } catch (error) {
        this.#discardStage()
        this.#handleFailure(error, node, undefined)
      } finally {
        this.#serial.current = { metadata: undefined, node: '' }
      }
    })
  }

  /** Where processing is: the concurrent record's own scope when inside one, else the serial one. */
  #at(): ProcessingScope {
    return this.#concurrent?.scope() ?? this.#serial
  }

  #contextHost(): ContextHost {
    this.#host ??= {
      applicationId: this.#options.applicationId,
      taskId: this.id,
      partition: this.partition,
      children: (node) => this.#options.topology.children.get(node) ?? [],
      deliver: (node, record, metadata) => this.#deliver(node, record, metadata),
      metadata: () => this.#at().current.metadata,
      storeView: (name) => {
        const buffer = this.#buffers.get(name)
        const spec = this.#options.topology.stores[name]
        if (buffer === undefined || spec === undefined) throw new WeirError('WEIR_ERR_STATE_STORE', `task ${this.id}: store ${name} is not open`)
        return typedStoreView(name, buffer, spec)
      },
      schedule: (node, intervalMs, type, callback) =>
        this.#punctuations.add(node, intervalMs, type, type === 'wall-clock' ? this.#options.now() : Math.max(this.#streamTime, 0), callback),
      timers: (node) => this.#timers.get(node),
      requestCommit: () => {
        this.#commitRequested = true
      },
      now: () => this.#options.now(),
    }
    return this.#host
  }
}
