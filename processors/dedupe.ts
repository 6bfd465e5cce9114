// Consumed-id dedupe: drops a record whose id was already seen within the retention window. The id is
// written to a store in the same transaction as everything the record caused, so "seen" and "done" are
// one fact; expiry uses a durable timer per id (no scans of the store).
import type { Envelope } from '../envelope/envelope.ts'
import type { Processor, ProcessorContext, ProcessorFactory } from '../topology/processor.ts'
import type { StreamRecord } from '../topology/record.ts'
import { invalidOptions } from '../core/errors.ts'

export interface DedupeOptions {
  /** Store holding seen ids (declare it in the topology and list it in the processor's `stores`). */
  store: string
  /** How long an id is remembered, ms (default 24 h). The processor needs `timers: true`. */
  retentionMs?: number
  /** The id of a record (default: the envelope id of the value). */
  idOf?: (record: StreamRecord) => string | undefined
}

export interface DedupeMetrics {
  passed: number
  duplicates: number
  expired: number
}

export type DedupeFactory = ProcessorFactory & { readonly metrics: DedupeMetrics }

const envelopeId = (record: StreamRecord) => (record.value as Envelope | undefined)?.id

export function dedupe(options: DedupeOptions): DedupeFactory {
  const violations: string[] = []
  if (typeof options.store !== 'string' || options.store.length === 0) violations.push('store must name a declared store')
  if (options.retentionMs !== undefined && !(Number.isInteger(options.retentionMs) && options.retentionMs > 0)) {
    violations.push('retentionMs must be a positive integer')
  }
  if (violations.length > 0) throw invalidOptions('dedupe', violations)
  const retentionMs = options.retentionMs ?? 24 * 60 * 60_000
  const idOf = options.idOf ?? envelopeId
  // Shared by every task of this process, so a service can export them as metrics.
  const metrics: DedupeMetrics = { passed: 0, duplicates: 0, expired: 0 }

  const factory = (): Processor => {
    let context: ProcessorContext
    return {
      init(c) {
        context = c
      },
      async process(record) {
        const id = idOf(record)
        if (id === undefined) {
          await context.forward(record)
          return
        }
        const seen = context.store<string, number>(options.store)
        if ((await seen.get(id)) !== undefined) {
          metrics.duplicates++
          return
        }
        const now = context.now()
        await seen.put(id, now)
        await context.timers.set(`dedupe:${id}`, now + retentionMs, id)
        metrics.passed++
        await context.forward(record)
      },
      async onTimer(timer) {
        if (!timer.key.startsWith('dedupe:')) return
        await context.store<string, number>(options.store).delete(timer.payload as string)
        metrics.expired++
      },
    }
  }
  return Object.assign(factory, { metrics })
}
