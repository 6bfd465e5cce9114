// Command TTL: the one place that decides, per request, between its result and its timeout.
//
// The gateway registers every command with a deadline on the deadlines topic, keyed like the command, so the
// registration reaches the task that runs the command (the deadlines and commands topics are co-partitioned).
// In the command service the router hands each result to this processor within that task (a topology may also
// feed results from a topic, as long as a request's results and registration reach the same task). Per request:
//   - the first of {result, deadline} becomes the request's one outcome, forwarded to `outcomes`; a result
//     processed at or after the deadline of its open request lost the race even if the timer has not fired yet
//     (timers wait while a handler runs in the same task), so the timeout is the outcome and the result is late;
//   - a result that arrives after its timeout is forwarded to `late` (kept and counted, never delivered);
//   - the deadline timer fires at the deadline however long the command waits behind others.
// Decisions are kept per request (client session and requestId: a requestId is the client's choice and only
// unique within its session) as the processor's durable timers, committed with the outputs, so every reader of the
// outcomes topic sees the same outcome: an open request is its deadline timer (`ttl:<key>`, the command as payload),
// a decided one its expiry timer (`gc:<key>`, the outcome as payload, due when the decision is forgotten). One
// changelog record per request, and none for a deadline set and cancelled between two commits.
import { invalidOptions } from '../core/errors.ts'
import type { ErrorCode } from '../core/errors.ts'
import { followUp } from '../envelope/envelope.ts'
import type { Envelope } from '../envelope/envelope.ts'
import type { Processor, ProcessorContext, ProcessorFactory } from '../topology/processor.ts'
import { StreamRecord } from '../topology/record.ts'

export interface DeadlineArbiterOptions {
  /**
   * A store of decisions in the older layout (an entry per request beside its timers). Optional: decisions live in
   * the processor's timers; given, it is read for the outcome of a request decided there, and emptied as they expire.
   */
  store?: string
  /** How long a decision is remembered after it was made, ms (default 1 h). */
  retentionMs?: number
  /** Child that receives outcomes and child that receives late results (default 'outcomes' and 'late'). */
  outcomes?: string
  late?: string
}

export interface DeadlineArbiterMetrics {
  registered: number
  results: number
  timeouts: number
  lateResults: number
  /** Outcomes decided by a result that came without (or before) a deadline registration. */
  unregisteredResults: number
}

type Outcome = 'ok' | 'error' | 'timeout'
type Decision = { state: 'open'; deadline: number } | { state: 'done'; outcome: Outcome | 'unknown'; at: number }
/** The payload of a request's `gc:` timer; the older layout kept the request key there (a string). */
interface DecidedPayload { outcome: Outcome; at: number }

export type DeadlineArbiterFactory = ProcessorFactory & { readonly metrics: DeadlineArbiterMetrics }

export const TIMEOUT_ERROR_CODE: ErrorCode = 'WEIR_ERR_DEADLINE_EXCEEDED'

/** The key of a request's decision and timers: requestIds of different client sessions never meet. */
export function requestKey(envelope: Pick<Envelope, 'requestId' | 'clientSessionId'>): string {
  return envelope.clientSessionId === undefined ? envelope.requestId : `${envelope.clientSessionId}\u0000${envelope.requestId}`
}

export function deadlineArbiter(options: DeadlineArbiterOptions): DeadlineArbiterFactory {
  if (options.store !== undefined && (typeof options.store !== 'string' || options.store.length === 0)) {
    throw invalidOptions('deadlineArbiter', ['store must name a declared store'])
  }
  const legacyStore = options.store
  const retentionMs = options.retentionMs ?? 60 * 60_000
  const outcomes = options.outcomes ?? 'outcomes'
  const late = options.late ?? 'late'
  const metrics: DeadlineArbiterMetrics = { registered: 0, results: 0, timeouts: 0, lateResults: 0, unregisteredResults: 0 }

  const factory = (): Processor<unknown, Envelope> => {
    let context: ProcessorContext

    /** The request's decision: done (its gc timer), open (its deadline timer) or none. */
    async function decisionOf(key: string): Promise<Decision | undefined> {
      const decided = await context.timers.get(`gc:${key}`)
      if (decided !== undefined) {
        const payload = decided.payload as DecidedPayload | string
        if (typeof payload === 'object' && payload !== null) return { state: 'done', outcome: payload.outcome, at: payload.at }
        const older = legacyStore === undefined ? undefined : await context.store<string, Decision>(legacyStore).get(key)
        return older?.state === 'done' ? older : { state: 'done', outcome: 'unknown', at: decided.at - retentionMs }
      }
      const open = await context.timers.get(`ttl:${key}`)
      return open === undefined ? undefined : { state: 'open', deadline: open.at }
    }

    /** The timeout outcome of an open request whose deadline passed. */
    async function timeOut(command: Envelope, deadline: number, at: number): Promise<void> {
      metrics.timeouts++
      await decide(requestKey(command), 'timeout')
      const timeout = followUp(command, {
        kind: 'result',
        alias: command.alias,
        status: 'timeout',
        payload: { code: TIMEOUT_ERROR_CODE, message: `no result before the deadline (${new Date(deadline).toISOString()})`, deadline },
        now: at,
      })
      await context.forward(new StreamRecord(command.requestId, timeout, at), outcomes)
    }

    async function decide(key: string, outcome: Outcome): Promise<void> {
      const now = context.now()
      const payload: DecidedPayload = { outcome, at: now }
      await context.timers.set(`gc:${key}`, now + retentionMs, payload)
    }

    return {
      init(c) {
        context = c
      },
      async process(record: StreamRecord<unknown, Envelope>) {
        const envelope = record.value
        const requestId = envelope.requestId
        const key = requestKey(envelope)
        const current = await decisionOf(key)
        if (envelope.kind === 'command') {
          // A registration: the first one counts; replays and registrations after the outcome are ignored.
          if (current !== undefined || envelope.deadline === undefined) return
          metrics.registered++
          await context.timers.set(`ttl:${key}`, envelope.deadline, envelope)
          return
        }
        if (envelope.kind !== 'result') return
        let decided = current
        if (current?.state === 'open' && context.now() >= current.deadline) {
          // The deadline came first; its timer just has not fired yet.
          const timer = await context.timers.get(`ttl:${key}`)
          if (timer !== undefined) {
            await context.timers.cancel(`ttl:${key}`)
            await timeOut(timer.payload as Envelope, current.deadline, context.now())
            decided = { state: 'done', outcome: 'timeout', at: context.now() }
          }
        }
        if (decided?.state === 'done') {
          metrics.lateResults++
          await context.forward(record.withHeaders({ 'weir.late': decided.outcome }), late)
          return
        }
        if (current === undefined) metrics.unregisteredResults++
        else await context.timers.cancel(`ttl:${key}`)
        metrics.results++
        await decide(key, envelope.status === 'error' ? 'error' : 'ok')
        await context.forward(new StreamRecord(requestId, envelope, record.timestamp, record.headers), outcomes)
      },
      async onTimer(timer) {
        if (timer.key.startsWith('gc:')) {
          if (legacyStore !== undefined) await context.store<string, Decision>(legacyStore).delete(timer.key.slice(3))
          return
        }
        // A deadline timer that fires is an open request (a decision cancels it in the same transaction).
        const command = timer.payload as Envelope
        const key = requestKey(command)
        if ((await context.timers.get(`gc:${key}`)) !== undefined) return
        if (legacyStore !== undefined && (await context.store<string, Decision>(legacyStore).get(key))?.state === 'done') return
        await timeOut(command, timer.at, timer.firedAt)
      },
    }
  }
  return Object.assign(factory, { metrics })
}
