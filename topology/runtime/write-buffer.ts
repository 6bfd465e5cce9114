// Uncommitted writes of one store, layered over the committed store. Writes of the record (or timer) being
// processed sit in a stage that is dropped if processing fails; the pending layer holds everything since the
// last Kafka commit and is applied to the committed store only after that commit succeeded. So the local
// store never holds anything Kafka does not.
//
// A commit runs while the task goes on processing: `seal()` freezes the pending layer (its operations are what
// the transaction carries) and starts a new one over it; `flushSealed()` applies the sealed layer to the
// committed store once the transaction committed. Reads see stage over pending over sealed over committed.
//
// A key the committed store is known not to hold (a get with noteAbsent found nothing there since the last flush,
// or the caller vouches for it: markAbsent) needs no tombstone when it is deleted: a put and a delete of such a key in one
// commit interval leave nothing at all, in the local store or the changelog. Timers set and cancelled between two
// commits (a command's deadline, cancelled by its result) cost no records.
//
// Records a task processes concurrently (task.ts, maxInFlight) each keep their writes in a stage of their own,
// found through `scope` (the record's async context): reads see that record's stage over the shared layers, and
// the task applies the stage to the pending layer when the record finished (applyStage).
//
// The pending layer is kept in key order (state/sorted-map.ts), so a range scan merges it with the committed
// store in O(log n + k): timers scan for due entries every few milliseconds while thousands of writes wait
// for the next commit, and copying and sorting the pending writes on every scan made firing quadratic.
import { WeirError } from '../../core/errors.ts'
import { SortedMap } from '../../state/sorted-map.ts'
import type { Bound, ScanBounds } from '../../state/sorted-map.ts'
import type { BatchOperation, ByteStore, KeyRange } from '../../state/kv-store.ts'

/** The pending layer's value for a deleted key (compared by identity, so an empty value is not a deletion). */
const TOMBSTONE = Buffer.alloc(0)
/** Keys remembered as absent from the committed store between two flushes (an optimization: past it, forget). */
const MAX_ABSENT = 100_000

/** One record's staged writes per buffer, while records are processed concurrently (null = deleted). */
export type RecordStage = Map<WriteBuffer, Map<string, Buffer | null>>

interface LocalEntry {
  k: string
  /** null = deleted */
  value: Buffer | null
}

const str = (key: Buffer) => key.toString('latin1') // byte order == string order for latin1
const bytes = (k: string) => Buffer.from(k, 'latin1')

export class WriteBuffer {
  readonly base: ByteStore
  #pending = new SortedMap()
  /** The layer a commit in flight carries (frozen), between seal() and flushSealed(). */
  #sealed: SortedMap | undefined
  #sealedOperations: BatchOperation[] = []
  #stage: Map<string, Buffer | null> | undefined
  #staging = false
  /** Keys neither the committed store nor the sealed layer holds (cleared when a layer is sealed). */
  #absent = new Set<string>()
  /** The stage of the record being processed concurrently, if any (undefined: the buffer's own stage). */
  readonly #scope: (() => RecordStage | undefined) | undefined

  constructor(base: ByteStore, scope?: () => RecordStage | undefined) {
    this.base = base
    this.#scope = scope
  }

  /** The stage reads and writes go to: the concurrent record's, or this buffer's own. */
  #currentStage(): Map<string, Buffer | null> | undefined {
    const scoped = this.#scope?.()
    return scoped === undefined ? this.#stage : scoped.get(this)
  }

  /** A concurrent record finished: its writes join the pending layer. */
  applyStage(writes: Map<string, Buffer | null>): void {
    for (const [k, value] of writes) this.#setPending(k, value)
  }

  /** Writes in the pending layer (not the sealed one): what the next seal() will carry. */
  get pendingSize(): number {
    return this.#pending.size
  }

  get size(): number {
    return this.#pending.size + (this.#sealed?.size ?? 0) + (this.#stage?.size ?? 0)
  }

  beginStage(): void {
    this.#staging = true
  }

  commitStage(): void {
    this.#staging = false
    if (this.#stage === undefined) return
    for (const [k, value] of this.#stage) this.#setPending(k, value)
    this.#stage = undefined
  }

  discardStage(): void {
    this.#staging = false
    this.#stage = undefined
  }

  /** The merged view's value; with `noteAbsent`, a miss in the committed store is remembered until the next flush. */
  async get(key: Buffer, noteAbsent = false): Promise<Buffer | undefined> {
    const k = str(key)
    const stage = this.#currentStage()
    const staged = stage?.get(k)
    if (staged !== undefined) return staged ?? undefined
    if (stage?.has(k) === true) return undefined
    const pending = this.#pending.get(k)
    if (pending !== undefined) return pending === TOMBSTONE ? undefined : pending
    const sealed = this.#sealed?.get(k)
    if (sealed !== undefined) return sealed === TOMBSTONE ? undefined : sealed
    // Neither the committed store nor the sealed layer holds it (see #absent): no read of the committed store.
    if (this.#absent.has(k)) return undefined
    const committed = await this.base.get(key)
    if (committed === undefined && noteAbsent) this.#noteAbsent(k)
    return committed
  }

  /** True when the committed store is known not to hold `key` (until the next flush). */
  knownAbsent(key: Buffer): boolean {
    return this.#absent.has(str(key))
  }

  /** The caller knows the committed store does not hold `key` (e.g. derived from another key known absent). */
  markAbsent(key: Buffer): void {
    this.#noteAbsent(str(key))
  }

  #noteAbsent(k: string): void {
    if (this.#absent.size >= MAX_ABSENT) this.#absent.clear()
    this.#absent.add(k)
  }

  put(key: Buffer, value: Buffer): void {
    this.#write(str(key), value)
  }

  delete(key: Buffer): void {
    this.#write(str(key), null)
  }

  // The stage map exists only once the current record writes.
  #write(k: string, value: Buffer | null): void {
    const scoped = this.#scope?.()
    if (scoped !== undefined) {
      let writes = scoped.get(this)
      if (writes === undefined) {
        writes = new Map()
        scoped.set(this, writes)
      }
      writes.set(k, value)
      return
    }
    if (!this.#staging) {
      this.#setPending(k, value)
      return
    }
    this.#stage ??= new Map()
    this.#stage.set(k, value)
  }

  #setPending(k: string, value: Buffer | null): void {
    // Deleting what the committed store does not hold: forget the pending write, leave no tombstone.
    if (value === null && this.#absent.has(k)) this.#pending.delete(k)
    else this.#pending.set(k, value ?? TOMBSTONE)
  }

  /** Entries of the merged view (stage over pending over base), in key order. */
  async *range(options: KeyRange = {}): AsyncGenerator<[Buffer, Buffer]> {
    const { limit, reverse = false, ...bounds } = options
    const max = limit ?? Infinity
    if (max <= 0) return
    const local = this.#local(bounds, reverse)
    let next = local.next()
    const before = (a: string, b: string) => (reverse ? a > b : a < b)
    let emitted = 0
    for await (const [key, value] of this.base.range({ ...bounds, reverse })) {
      const k = str(key)
      while (!next.done && before(next.value.k, k)) {
        const entry = next.value
        next = local.next()
        if (entry.value !== null) {
          yield [bytes(entry.k), entry.value]
          if (++emitted >= max) return
        }
      }
      if (!next.done && next.value.k === k) {
        const entry = next.value
        next = local.next()
        if (entry.value === null) continue
        yield [key, entry.value]
      } else {
        yield [key, value]
      }
      if (++emitted >= max) return
    }
    for (; !next.done; next = local.next()) {
      if (next.value.value !== null) {
        yield [bytes(next.value.k), next.value.value]
        if (++emitted >= max) return
      }
    }
  }

  /** Stage over pending, within bounds, in scan order. */
  *#local(bounds: Omit<KeyRange, 'limit' | 'reverse'>, reverse: boolean): Generator<LocalEntry, void, undefined> {
    const scan: ScanBounds = { reverse }
    const lower: Bound | undefined = bounds.gt !== undefined ? { k: str(bounds.gt), inclusive: false } : bounds.gte !== undefined ? { k: str(bounds.gte), inclusive: true } : undefined
    const upper: Bound | undefined = bounds.lt !== undefined ? { k: str(bounds.lt), inclusive: false } : bounds.lte !== undefined ? { k: str(bounds.lte), inclusive: true } : undefined
    if (lower !== undefined) scan.lower = lower
    if (upper !== undefined) scan.upper = upper
    const pending = overlay(entries(this.#pending.scan(scan)), entries(this.#sealed?.scan(scan)), reverse)
    const staged: LocalEntry[] = []
    const stage = this.#currentStage()
    if (stage !== undefined) {
      for (const [k, value] of stage) if (inBounds(k, lower, upper)) staged.push({ k, value })
      staged.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
      if (reverse) staged.reverse()
    }
    yield* overlay(staged[Symbol.iterator](), pending, reverse)
  }

  /** The pending writes, one final operation per key (what the next seal() hands to the changelog). */
  pendingOperations(): BatchOperation[] {
    return operationsOf(this.#pending)
  }

  /** True between seal() and flushSealed() (a commit of this store's writes is in flight). */
  get sealed(): boolean {
    return this.#sealed !== undefined
  }

  /**
   * Freezes the pending writes for a commit and returns them (one final operation per key); later writes go to a
   * new pending layer over them. Called between records, never while a stage is open.
   */
  seal(): BatchOperation[] {
    if (this.#sealed !== undefined) throw new WeirError('WEIR_ERR_STATE_STORE', 'write buffer: a sealed layer is still waiting for its commit')
    if (this.#staging) throw new WeirError('WEIR_ERR_STATE_STORE', 'write buffer: cannot seal while a record is being processed')
    this.#sealedOperations = operationsOf(this.#pending)
    this.#sealed = this.#pending
    this.#pending = new SortedMap()
    // A key noted absent may have been written since and sealed: its delete now needs a tombstone. Keys noted
    // absent from here on are absent from the sealed layer too, so they stay valid after flushSealed().
    this.#absent.clear()
    return this.#sealedOperations
  }

  /** After the sealed writes' Kafka commit: make them durable locally. */
  async flushSealed(): Promise<void> {
    if (this.#sealed === undefined) return
    const operations = this.#sealedOperations
    if (operations.length > 0) await this.base.write(operations)
    // Not cleared: a range scan that started before may still read it (it is frozen, so that is harmless).
    this.#sealed = undefined
    this.#sealedOperations = []
  }

  /** Seal and flush in one step (a commit nothing else overlaps: the test driver, tests). */
  async flushToBase(): Promise<void> {
    this.seal()
    await this.flushSealed()
  }

  /** After a failed commit: forget everything not committed. */
  clear(): void {
    this.#pending.clear()
    this.#sealed = undefined
    this.#sealedOperations = []
    this.#absent.clear()
    this.#stage = undefined
    this.#staging = false
  }
}

function operationsOf(layer: SortedMap): BatchOperation[] {
  const operations: BatchOperation[] = []
  for (const { k, value } of layer.scan({})) {
    operations.push(value === TOMBSTONE ? { type: 'delete', key: bytes(k) } : { type: 'put', key: bytes(k), value })
  }
  return operations
}

function* entries(scan: Iterable<{ k: string; value: Buffer }> | undefined): Generator<LocalEntry, void, undefined> {
  if (scan === undefined) return
  for (const item of scan) yield { k: item.k, value: item.value === TOMBSTONE ? null : item.value }
}

/** Two layers in scan order, the upper one winning on equal keys. */
function* overlay(upper: Iterator<LocalEntry>, lower: Iterator<LocalEntry>, reverse: boolean): Generator<LocalEntry, void, undefined> {
  const before = (a: string, b: string) => (reverse ? a > b : a < b)
  let u = upper.next()
  let l = lower.next()
  while (!u.done || !l.done) {
    if (l.done || (!u.done && before(u.value.k, l.value.k))) {
      yield (u as IteratorYieldResult<LocalEntry>).value
      u = upper.next()
    } else if (u.done || before(l.value.k, u.value.k)) {
      yield l.value
      l = lower.next()
    } else {
      yield u.value
      u = upper.next()
      l = lower.next()
    }
  }
}

function inBounds(k: string, lower: Bound | undefined, upper: Bound | undefined): boolean {
  if (lower !== undefined && (k < lower.k || (k === lower.k && !lower.inclusive))) return false
  if (upper !== undefined && (k > upper.k || (k === upper.k && !upper.inclusive))) return false
  return true
}
