// Delayed envelopes: "produce this record to topic T with key K at time t", scheduled through a topic,
// held in the durable timer store (RocksDB + changelog, nothing in the JS heap), produced exactly once when
// due (the timer's deletion and the produced record commit in one transaction), cancellable by id.
import { Packr } from 'msgpackr'

import { WeirError, invalidOptions } from '../core/errors.ts'
import type { Processor, ProcessorContext, ProcessorFactory } from '../topology/processor.ts'
import { StreamRecord } from '../topology/record.ts'
import type { Serde } from '../topology/serde.ts'

export interface ScheduleRequest {
  op: 'schedule'
  /** Unique id; scheduling an id again replaces it (so re-sending a request is harmless). */
  id: string
  /** When to produce, ms since the epoch. */
  deliverAt: number
  topic: string
  key?: Uint8Array | null
  value: Uint8Array | null
  headers?: Record<string, Uint8Array | string>
}

export interface CancelRequest {
  op: 'cancel'
  id: string
}

export type SchedulerRequest = ScheduleRequest | CancelRequest

/** What the scheduler forwards when a request is due: the sink picks `topic` and writes `value` as is. */
export interface DueDelivery {
  topic: string
  value: Buffer | null
}

export interface SchedulerMetrics {
  scheduled: number
  cancelled: number
  delivered: number
  invalid: number
  /** Schedule requests dropped because their id was delivered within `rememberDeliveredMs`. */
  duplicates: number
  /** Recent delivery lateness samples (fired - due), ms: a ring of the last 10,000, in no particular order. */
  lateness: number[]
}

export type SchedulerFactory = ProcessorFactory & { readonly metrics: SchedulerMetrics }

const LATENESS_SAMPLES = 10_000

const packr = new Packr({ useRecords: false, moreTypes: false })

/** msgpack serde for scheduler requests (the scheduler topic's value serde). */
export const schedulerRequestSerde: Serde<SchedulerRequest> = {
  serialize: (request) => packr.pack(request),
  deserialize: (bytes) => {
    const value = bytes === undefined || bytes.length === 0 ? undefined : (packr.unpack(bytes) as unknown)
    const problems = validateRequest(value)
    if (problems.length > 0) throw new WeirError('WEIR_ERR_DESERIALIZATION', `invalid scheduler request: ${problems.join('; ')}`, { details: { violations: problems } })
    return value as SchedulerRequest
  },
}

/** Serde for the delivery sink: writes the scheduled value bytes unchanged. */
export const dueDeliverySerde: Serde<DueDelivery> = {
  serialize: (delivery) => delivery.value,
  deserialize: () => {
    throw new WeirError('WEIR_ERR_DESERIALIZATION', 'due deliveries are written, never read')
  },
}

export function validateRequest(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return ['not a map']
  const r = value as Record<string, unknown>
  const problems: string[] = []
  if (typeof r.id !== 'string' || r.id.length === 0) problems.push('id must be a non-empty string')
  if (r.op === 'cancel') return problems
  if (r.op !== 'schedule') return [...problems, "op must be 'schedule' or 'cancel'"]
  if (typeof r.deliverAt !== 'number' || !Number.isFinite(r.deliverAt)) problems.push('deliverAt must be a number (ms since the epoch)')
  if (typeof r.topic !== 'string' || r.topic.length === 0) problems.push('topic must be a non-empty string')
  if (r.value !== null && !(r.value instanceof Uint8Array)) problems.push('value must be bytes or null')
  if (r.key !== undefined && r.key !== null && !(r.key instanceof Uint8Array)) problems.push('key must be bytes or null')
  return problems
}

export interface SchedulerOptions {
  /** Topics the scheduler may produce to; anything else is dead-lettered (default: any). */
  allowedTopics?: readonly string[]
  /**
   * How long the id of a delivered envelope is remembered, ms (default 0: not remembered, and scheduling a
   * delivered id again delivers again). While it is remembered, a schedule request with that id is dropped and
   * counted in `metrics.duplicates`, and a cancel of it does nothing: a request re-sent or re-imported after its
   * delivery (`weir import-redis` re-run after a crash) is not delivered twice. The memory is a marker timer
   * under the id, written in the delivery's transaction: one more changelog record per delivery, and one when
   * the marker expires.
   */
  rememberDeliveredMs?: number
}

/** The payload of the marker timer that remembers a delivered id (no schedule payload has `deliveredAt`). */
interface DeliveredMarker {
  deliveredAt: number
}
const isDeliveredMarker = (payload: unknown): payload is DeliveredMarker =>
  typeof payload === 'object' && payload !== null && typeof (payload as Partial<DeliveredMarker>).deliveredAt === 'number'

export function scheduler(options: SchedulerOptions = {}): SchedulerFactory {
  const violations: string[] = []
  if (options.allowedTopics !== undefined && !Array.isArray(options.allowedTopics)) violations.push('allowedTopics must be an array')
  const remember = options.rememberDeliveredMs ?? 0
  if (!(Number.isInteger(remember) && remember >= 0)) violations.push('rememberDeliveredMs must be an integer >= 0')
  if (violations.length > 0) throw invalidOptions('scheduler', violations)
  const allowed = options.allowedTopics === undefined ? undefined : new Set(options.allowedTopics)
  const metrics: SchedulerMetrics = { scheduled: 0, cancelled: 0, delivered: 0, invalid: 0, duplicates: 0, lateness: [] }
  // Whether `id` was delivered within the remembered window (one timer lookup; none when nothing is remembered).
  const delivered = async (context: ProcessorContext, id: string) => remember > 0 && isDeliveredMarker((await context.timers.get(id))?.payload)

  const factory = (): Processor<unknown, SchedulerRequest> => {
    let context: ProcessorContext
    return {
      init(c) {
        context = c
      },
      async process(record: StreamRecord<unknown, SchedulerRequest>) {
        const request = record.value
        if (await delivered(context, request.id)) {
          if (request.op === 'schedule') metrics.duplicates++
          return
        }
        if (request.op === 'cancel') {
          if (await context.timers.cancel(request.id)) metrics.cancelled++
          return
        }
        if (allowed !== undefined && !allowed.has(request.topic)) {
          metrics.invalid++
          throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `scheduler: topic ${request.topic} is not allowed`)
        }
        metrics.scheduled++
        await context.timers.set(request.id, request.deliverAt, {
          topic: request.topic,
          key: request.key ?? null,
          value: request.value,
          headers: request.headers ?? {},
        })
      },
      async onTimer(timer) {
        // A marker that expired: the id may be scheduled again.
        if (isDeliveredMarker(timer.payload)) return
        const due = timer.payload as { topic: string; key: Uint8Array | null; value: Uint8Array | null; headers: Record<string, Uint8Array | string> }
        const headers = new Map<string, Buffer>()
        for (const [name, value] of Object.entries(due.headers)) headers.set(name, Buffer.from(value))
        headers.set('weir.scheduled.id', Buffer.from(timer.key))
        headers.set('weir.scheduled.at', Buffer.from(String(timer.at)))
        // A ring of the last LATENESS_SAMPLES (no shifting: that would cost O(n) per delivery).
        if (metrics.lateness.length < LATENESS_SAMPLES) metrics.lateness.push(timer.firedAt - timer.at)
        else metrics.lateness[metrics.delivered % LATENESS_SAMPLES] = timer.firedAt - timer.at
        metrics.delivered++
        const delivery: DueDelivery = { topic: due.topic, value: due.value === null ? null : Buffer.from(due.value) }
        await context.forward(new StreamRecord(due.key === null ? null : Buffer.from(due.key), delivery, timer.firedAt, headers))
        if (remember > 0) await context.timers.set(timer.key, timer.firedAt + remember, { deliveredAt: timer.firedAt } satisfies DeliveredMarker)
        // A due envelope is visible only once its transaction commits: ask for that now, not at the end of the
        // commit interval (the runtime commits after the current round, carrying every delivery of the round).
        context.commit()
      },
    }
  }
  return Object.assign(factory, { metrics })
}
