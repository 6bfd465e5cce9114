// Input records of one task processed concurrently (maxInFlight > 1), so a handler that awaits I/O does not hold
// up the records behind it. Records of the same key run one after the other (a chain per key); records of
// different keys overlap. Each record runs in a scope of its own (its async context): the node it is in, its
// outputs and its staged store writes, which the task takes over when the record finished.
//
// Exactly-once needs no more than this because the task only plans a commit, fires timers or punctuates with
// nothing in flight (the loop stops starting records until then): every record a commit's offsets cover has
// finished, and every finished record's writes and outputs are in the commit that covers its offset.
import { AsyncLocalStorage } from 'node:async_hooks'

import type { OutgoingRecord } from '../../kafka/types.ts'
import type { RecordMetadata } from '../processor.ts'
import type { RecordStage } from './write-buffer.ts'

/** Where processing is: the record's metadata (undefined in timers and punctuations) and the node it is in. */
export interface Current {
  metadata: RecordMetadata | undefined
  node: string
}

/** What one record being processed holds of its own. */
export interface ProcessingScope {
  current: Current
  /** The innermost processor that threw (named in dead-letter headers). */
  failingNode: string | undefined
}

export interface RecordScope extends ProcessingScope {
  outputs: OutgoingRecord[]
  stage: RecordStage
}

/** A record's chain key: its key's bytes (records without a key share one chain). */
const chainKey = (key: Buffer | null | undefined): string => (key === null || key === undefined ? 'n' : `k${key.toString('latin1')}`)

export class InFlight {
  /** The most records in flight at once. */
  readonly limit: number
  readonly #storage = new AsyncLocalStorage<RecordScope>()
  #count = 0
  /** The last record of each key in flight: the next one of that key starts after it. */
  readonly #chains = new Map<string, Promise<void>>()
  /** Bumped by reset(): records started before it drop what they did. */
  #epoch = 0
  #fatal: { error: unknown } | undefined
  #settled = Promise.withResolvers<void>()

  constructor(limit: number) {
    this.limit = limit
  }

  /** Records started and not finished (waiting for their key's previous record included). */
  get count(): number {
    return this.#count
  }

  get full(): boolean {
    return this.#count >= this.limit
  }

  /** The scope of the record whose processing is running now (undefined outside one). */
  scope(): RecordScope | undefined {
    return this.#storage.getStore()
  }

  /** Runs `fn` in a record's scope. */
  within<T>(scope: RecordScope, fn: () => Promise<T>): Promise<T> {
    return this.#storage.run(scope, fn)
  }

  /**
   * Starts `work` after the previous record of `key`. It is told whether its results still count (false after a
   * reset); an error it throws stops the runtime (throwIfFailed), as the error policy 'fail' does when serial.
   */
  run(key: Buffer | null | undefined, work: (current: () => boolean) => Promise<void>): void {
    const k = chainKey(key)
    const epoch = this.#epoch
    const current = () => epoch === this.#epoch
    this.#count++
    const previous = this.#chains.get(k)
    const started = previous === undefined ? work(current) : previous.then(() => work(current))
    const done: Promise<void> = started.then(
      () => this.#finish(k, done),
      (error: unknown) => {
        if (current()) this.#fatal ??= { error }
        this.#finish(k, done)
      },
    )
    this.#chains.set(k, done)
  }

  #finish(k: string, done: Promise<void>): void {
    this.#count--
    if (this.#chains.get(k) === done) this.#chains.delete(k)
    this.#settled.resolve()
    this.#settled = Promise.withResolvers<void>()
  }

  /** Resolves when the next record in flight finishes. */
  settled(): Promise<void> {
    return this.#settled.promise
  }

  /** Resolves when no record is in flight. */
  async drained(): Promise<void> {
    while (this.#count > 0) await this.#settled.promise
  }

  /** The task rolled back: records in flight finish, and what they did is dropped. */
  reset(): void {
    this.#epoch++
  }

  /** A record failed under the error policy 'fail' (or the task itself failed): the loop rethrows it. */
  throwIfFailed(): void {
    if (this.#fatal !== undefined) throw this.#fatal.error
  }
}
