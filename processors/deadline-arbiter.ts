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
// Decisions are stored per request (client session and requestId: a requestId is the client's choice and only
// unique within its session) and committed with the outputs, so every reader of the outcomes topic sees the same
// outcome.
import { invalidOptions } from '../core/errors.ts'
import type { ErrorCode } from '../core/errors.ts'
import { followUp } from '../envelope/envelope.ts'
import type { Envelope } from '../envelope/envelope.ts'
import type { Processor, ProcessorContext, ProcessorFactory } from '../topology/processor.ts'
import { StreamRecord } from '../topology/record.ts'

export interface DeadlineArbiterOptions {
  /** Store for per-request decisions (declared in the topology and listed in `stores`). */
  store: string
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

type Decision = { state: 'open'; deadline: number } | { state: 'done'; outcome: 'ok' | 'error' | 'timeout'; at: number }

export type DeadlineArbiterFactory = ProcessorFactory & { readonly metrics: DeadlineArbiterMetrics }

export const TIMEOUT_ERROR_CODE: ErrorCode = 'WEIR_ERR_DEADLINE_EXCEEDED'

/** The key of a request's decision and timers: requestIds of different client sessions never meet. */
export function requestKey(envelope: Pick<Envelope, 'requestId' | 'clientSessionId'>): string {
  return envelope.clientSessionId === undefined ? envelope.requestId : `${envelope.clientSessionId}\u0000${envelope.requestId}`
}

export function deadlineArbiter(options: DeadlineArbiterOptions): DeadlineArbiterFactory {
  if (typeof options.store !== 'string' || options.store.length === 0) throw invalidOptions('deadlineArbiter', ['store must name a declared store'])
  const retentionMs = options.retentionMs ?? 60 * 60_000
  const outcomes = options.outcomes ?? 'outcomes'
  const late = options.late ?? 'late'
  const metrics: DeadlineArbiterMetrics = { registered: 0, results: 0, timeouts: 0, lateResults: 0, unregisteredResults: 0 }

  const factory = (): Processor<unknown, Envelope> => {
    let context: ProcessorContext
    const decisions = () => context.store<string, Decision>(options.store)

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

    async function decide(key: string, outcome: 'ok' | 'error' | 'timeout'): Promise<void> {
      const now = context.now()
      await decisions().put(key, { state: 'done', outcome, at: now })
      await context.timers.set(`gc:${key}`, now + retentionMs, key)
    }

    return {
      init(c) {
        context = c
      },
      async process(record: StreamRecord<unknown, Envelope>) {
        const envelope = record.value
        const requestId = envelope.requestId
        const key = requestKey(envelope)
        const current = await decisions().get(key)
        if (envelope.kind === 'command') {
          // A registration: the first one counts; replays and registrations after the outcome are ignored.
          if (current !== undefined || envelope.deadline === undefined) return
          metrics.registered++
          await decisions().put(key, { state: 'open', deadline: envelope.deadline })
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
          await decisions().delete(timer.payload as string)
          return
        }
        const command = timer.payload as Envelope
        const current = await decisions().get(requestKey(command))
        if (current?.state !== 'open') return
        await timeOut(command, timer.at, timer.firedAt)
      },
    }
  }
  return Object.assign(factory, { metrics })
}
