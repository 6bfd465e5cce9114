// Durable per-key timers over a key-value store: two key spaces in one store.
//   'k' + key            -> due time (8 bytes, big-endian ms)
//   't' + due + key      -> payload (msgpack)
// The 't' space is ordered by due time, so firing is a range scan from the start to "now"; nothing is held in
// the JS heap, however many timers are pending. Only the 't' space goes to the changelog: the 'k' space is an
// index of it (one entry per 't' entry), rebuilt from the 't' space after a restore (rebuildKeyIndex), so a timer
// costs one changelog record when set and one when it fires or is cancelled instead of two each.
import { Packr } from 'msgpackr'

import type { TimerService } from '../processor.ts'
import type { BatchOperation, ByteStore } from '../../state/kv-store.ts'
import type { WriteBuffer } from './write-buffer.ts'

const packr = new Packr({ useRecords: false, moreTypes: false })
/** pendingCount scans (exact) below this estimate. */
const EXACT_COUNT_UP_TO = 5000
const K = 0x6b // 'k'
const T = 0x74 // 't'
/** Range bounds of the two key spaces. */
const K_SPACE = { gte: Buffer.from([K]), lt: Buffer.from([K + 1]) }
const T_START = Buffer.from([T])
const T_END = Buffer.from([T + 1])

function byKey(key: string): Buffer {
  return Buffer.concat([Buffer.from([K]), Buffer.from(key, 'utf8')])
}

function encodeTime(at: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(at))))
  return b
}

function byTime(at: number, key: string): Buffer {
  return Buffer.concat([Buffer.from([T]), encodeTime(at), Buffer.from(key, 'utf8')])
}

/** True for keys of the 'k' space (the index): the runtime leaves them out of the changelog. */
export function isKeyIndexKey(key: Buffer): boolean {
  return key[0] === K
}

const REBUILD_BATCH = 10_000

/**
 * Makes the 'k' space of a timer store match its 't' space (after the 't' space was restored from the
 * changelog): stale index entries are deleted, one entry per timer is written. Returns the number of timers.
 */
export async function rebuildKeyIndex(store: ByteStore): Promise<number> {
  let batch: BatchOperation[] = []
  const flush = async () => {
    if (batch.length > 0) await store.write(batch)
    batch = []
  }
  // Deletes first, collected before writing (a scan does not see its own writes either way).
  const stale: Buffer[] = []
  for await (const [key] of store.range(K_SPACE)) stale.push(key)
  for (const key of stale) {
    batch.push({ type: 'delete', key })
    if (batch.length >= REBUILD_BATCH) await flush()
  }
  await flush()
  let timers = 0
  for await (const [timeKey] of store.range({ gte: T_START, lt: T_END })) {
    batch.push({ type: 'put', key: Buffer.concat([Buffer.from([K]), timeKey.subarray(9)]), value: Buffer.from(timeKey.subarray(1, 9)) })
    timers++
    if (batch.length >= REBUILD_BATCH) await flush()
  }
  await flush()
  return timers
}

/** A timer store's changelog carries its 't' space only; the 'k' space is rebuilt from it after a restore. */
export const timerStoreHooks = {
  changelogged: (key: Buffer): boolean => !isKeyIndexKey(key),
  restored: rebuildKeyIndex,
}

export interface DueTimer {
  key: string
  at: number
  payload: unknown
}

export class DurableTimers implements TimerService {
  readonly buffer: WriteBuffer
  /** Everything at or before this 't' key has fired (in this task's lifetime): scans start after it. */
  #firedUpTo: Buffer | undefined
  /**
   * No pending timer is due before this time (ms; Infinity: none pending; undefined: unknown). A lower bound: set()
   * lowers it, cancel and firing leave it, so a check before it needs no scan (the runtime checks every 10 ms).
   */
  #earliest: number | undefined

  constructor(buffer: WriteBuffer) {
    this.buffer = buffer
  }

  async set(key: string, at: number, payload: unknown = null): Promise<void> {
    if (typeof key !== 'string' || key.length === 0) throw new TypeError('timer key must be a non-empty string')
    if (!Number.isFinite(at)) throw new TypeError('timer time must be a finite number (ms since the epoch)')
    const keyIndex = byKey(key)
    const previous = await this.buffer.get(keyIndex, true)
    if (previous !== undefined) this.buffer.delete(byTime(Number(previous.readBigUInt64BE(0)), key))
    const timeKey = byTime(at, key)
    // The two key spaces are written in pairs, so no committed 'k' entry means no committed 't' entry for the key:
    // a timer set and cancelled (or fired) before the next commit leaves no record at all.
    if (previous === undefined && this.buffer.knownAbsent(keyIndex)) this.buffer.markAbsent(timeKey)
    this.buffer.put(keyIndex, encodeTime(at))
    this.buffer.put(timeKey, packr.pack(payload))
    if (this.#earliest !== undefined && at < this.#earliest) this.#earliest = at
    if (this.#firedUpTo !== undefined && Buffer.compare(timeKey, this.#firedUpTo) <= 0) this.#firedUpTo = undefined
  }

  async cancel(key: string): Promise<boolean> {
    const previous = await this.buffer.get(byKey(key))
    if (previous === undefined) return false
    this.buffer.delete(byTime(Number(previous.readBigUInt64BE(0)), key))
    this.buffer.delete(byKey(key))
    return true
  }

  async get(key: string): Promise<{ at: number; payload: unknown } | undefined> {
    // Noted when absent: a set() of the same key right after (the usual "not there yet, set it") reads nothing.
    const previous = await this.buffer.get(byKey(key), true)
    if (previous === undefined) return undefined
    const at = Number(previous.readBigUInt64BE(0))
    const payload = await this.buffer.get(byTime(at, key))
    return { at, payload: payload === undefined ? null : packr.unpack(payload) }
  }

  /** Up to `limit` timers due at or before `now`, oldest first (not yet removed). */
  async due(now: number, limit: number): Promise<DueTimer[]> {
    if (this.#earliest !== undefined && now < this.#earliest) return []
    const found: DueTimer[] = []
    // One entry past the due ones tells when the next timer is due.
    let next: number | undefined
    for await (const [timeKey, payload] of this.buffer.range({ ...this.#pendingFrom(), lt: T_END, limit: limit + 1 })) {
      const at = Number(timeKey.readBigUInt64BE(1))
      if (at > now || found.length === limit) {
        next = at
        break
      }
      found.push({ at, key: timeKey.subarray(9).toString('utf8'), payload: payload.length === 0 ? null : packr.unpack(payload) })
    }
    // Nothing else is due now: until the next timer (or a set() before it), no scan is needed.
    if (found.length < limit) this.#earliest = next ?? Infinity
    return found
  }

  /** When the earliest pending timer is due (ms since the epoch), or undefined when none is pending. */
  async nextAt(): Promise<number | undefined> {
    let at: number | undefined
    for await (const [timeKey] of this.buffer.range({ ...this.#pendingFrom(), lt: T_END, limit: 1 })) at = Number(timeKey.readBigUInt64BE(1))
    this.#earliest = at ?? Infinity
    return at
  }

  /** Where pending timers start in the 't' space: after what already fired in this task's lifetime. */
  #pendingFrom(): { gte: Buffer } | { gt: Buffer } {
    return this.#firedUpTo === undefined ? { gte: T_START } : { gt: this.#firedUpTo }
  }

  /** Removes a due timer; called in the same stage as its onTimer, so both commit or neither does. */
  remove(timer: DueTimer): void {
    const timeKey = byTime(timer.at, timer.key)
    this.buffer.delete(timeKey)
    this.buffer.delete(byKey(timer.key))
    this.#firedUpTo = timeKey
  }

  /** Forget the scan position and the earliest time (after a rollback the removed timers are pending again). */
  reset(): void {
    this.#firedUpTo = undefined
    this.#earliest = undefined
  }

  /**
   * Timers pending: counted exactly while the store's estimate says there are few (a scan of at most a few
   * thousand entries), estimated beyond (two entries per timer; RocksDB's key estimate counts a deletion of a
   * key it never held as removing one, so it can be off by the deletions of a recent interval).
   */
  async pendingCount(): Promise<number> {
    const estimate = Math.round((await this.buffer.base.approximateCount()) / 2)
    if (estimate > EXACT_COUNT_UP_TO) return estimate
    let count = 0
    for await (const _ of this.buffer.range({ gte: T_START, lt: T_END })) count++
    return count
  }
}

/** The durable timers of a task's processors, by processor name, in the topology's order. */
export class ProcessorTimers {
  readonly #byProcessor = new Map<string, DurableTimers>()

  add(processor: string, timers: DurableTimers): void {
    this.#byProcessor.set(processor, timers)
  }

  get(processor: string): DurableTimers | undefined {
    return this.#byProcessor.get(processor)
  }

  /** Fires timers due at `now` through `fire`, at most `budget` of them; returns how many fired. */
  async fireDue(now: number, budget: number, fire: (processor: string, timers: DurableTimers, timer: DueTimer) => Promise<void>): Promise<number> {
    let fired = 0
    for (const [name, timers] of this.#byProcessor) {
      if (fired >= budget) break
      const due = await timers.due(now, budget - fired)
      for (const timer of due) {
        await fire(name, timers, timer)
        fired++
      }
    }
    return fired
  }

  /** The earliest due time of any timer (Infinity: none). */
  async nextAt(): Promise<number> {
    let next = Infinity
    for (const timers of this.#byProcessor.values()) {
      const at = await timers.nextAt()
      if (at !== undefined && at < next) next = at
    }
    return next
  }

  async pendingCount(): Promise<number> {
    let total = 0
    for (const timers of this.#byProcessor.values()) total += await timers.pendingCount()
    return total
  }

  reset(): void {
    for (const timers of this.#byProcessor.values()) timers.reset()
  }
}
