// Consumed-id dedupe: drops a record whose id was already seen within the retention window. A seen id is a durable
// timer (`dedupe:<id>`, due when the id expires), set in the same transaction as everything the record caused, so
// "seen" and "done" are one fact, and its expiry is the timer firing: one changelog record per id, no scans.
import type { Envelope } from '../envelope/envelope.ts'
import type { Processor, ProcessorContext, ProcessorFactory } from '../topology/processor.ts'
import type { StreamRecord } from '../topology/record.ts'
import { invalidOptions } from '../core/errors.ts'

export interface DedupeOptions {
  /**
   * A store of seen ids in the older layout (an entry per id beside its timer). Optional: ids live in the
   * processor's timers; given, an expiring id is deleted from this store too, so an upgraded service empties it.
   */
  store?: string
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
  if (options.store !== undefined && (typeof options.store !== 'string' || options.store.length === 0)) violations.push('store must name a declared store')
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
        const key = `dedupe:${id}`
        if ((await context.timers.get(key)) !== undefined) {
          metrics.duplicates++
          return
        }
        await context.timers.set(key, context.now() + retentionMs, id)
        metrics.passed++
        await context.forward(record)
      },
      async onTimer(timer) {
        if (!timer.key.startsWith('dedupe:')) return
        if (options.store !== undefined) await context.store<string, number>(options.store).delete(timer.payload as string)
        metrics.expired++
      },
    }
  }
  return Object.assign(factory, { metrics })
}
