// The saga's state machine, one task per inbox partition: starts sagas, sends each step's message, follows the
// replies, times steps out with a durable timer, retries, and on a failure runs the compensations of the steps
// done so far in reverse order. Every transition rewrites the saga's state and sends its messages in one stage,
// so the state, the messages and the input offset commit in one transaction: a saga moves once per input or
// timer across crashes and rebalances, and ends exactly once, as completed or compensated.
import { WeirError } from '../core/errors.ts'
import { followUp } from '../envelope/envelope.ts'
import type { Envelope } from '../envelope/envelope.ts'
import type { FiredTimer, Processor, ProcessorContext, ProcessorFactory } from '../topology/processor.ts'
import { StreamRecord } from '../topology/record.ts'
import { backoffDelay } from './retry.ts'
import { parseStepRequestId, stepRequestId } from './saga-definition.ts'
import type { ResolvedMessage, ResolvedSaga, SagaPhase, SagaView } from './saga-definition.ts'
import { isEnded, parentOf, withHistory } from './saga-state.ts'
import type { SagaHistoryEntry, SagaState, SagaTimer } from './saga-state.ts'

export const SAGA_STORE = 'sagas'
/** Header on inbox records: 'start' or 'reply'. */
export const SAGA_INPUT_HEADER = 'weir.saga.input'
/** The saga's events: contextPath of every lifecycle event. */
export const SAGA_EVENT_CONTEXT = 'sagas'

export interface SagaMetrics {
  started: number
  completed: number
  compensated: number
  stepsCompleted: number
  stepFailures: number
  timeouts: number
  retries: number
  compensations: number
  /** Replies of an attempt that is not the current one, or of an ended saga. */
  staleReplies: number
  duplicateStarts: number
  /** Replies for saga ids without state: dead-lettered with WEIR_ERR_SAGA_UNKNOWN. */
  unknownReplies: number
  /** Starts and replies the router passed by (another saga's, or no saga's). */
  ignored: number
}

export const newSagaMetrics = (): SagaMetrics => ({
  started: 0,
  completed: 0,
  compensated: 0,
  stepsCompleted: 0,
  stepFailures: 0,
  timeouts: 0,
  retries: 0,
  compensations: 0,
  staleReplies: 0,
  duplicateStarts: 0,
  unknownReplies: 0,
  ignored: 0,
})

type Failure = { code: string; message: string; retriable: boolean; timedOut: boolean }

const NOT_RETRIABLE = new Set(['WEIR_ERR_NON_RETRIABLE', 'WEIR_ERR_UNKNOWN_COMMAND', 'WEIR_ERR_SCHEMA_VIOLATION', 'WEIR_ERR_FORBIDDEN'])

/** `sinkOf(topic)`: the name of the coordinator's sink writing to that topic (one per topic the saga sends to). */
export function sagaCoordinator(saga: ResolvedSaga, metrics: SagaMetrics, sinkOf: (topic: string) => string): ProcessorFactory {
  return (): Processor<string, Envelope> => {
    let context: ProcessorContext
    const store = () => context.store<string, SagaState>(SAGA_STORE)
    const view = (s: SagaState): SagaView => ({ sagaId: s.sagaId, data: s.data, results: s.results })
    const entry = (event: string, extra: Omit<SagaHistoryEntry, 'at' | 'event'> = {}): SagaHistoryEntry => ({ at: context.now(), event, ...extra })
    // The W3C header beside the envelope's own trace, for tracing tools that read Kafka headers.
    const traceHeaders = (envelope: Envelope) => new Map<string, Buffer>(envelope.trace === undefined ? [] : [['traceparent', Buffer.from(envelope.trace.traceparent)]])

    /** A lifecycle event of the saga (a follow-up of what moved it), keyed by saga id. */
    async function emit(s: SagaState, alias: string, extra: Record<string, unknown> = {}): Promise<void> {
      const base = followUp(s.parent, { kind: 'event', contextPath: SAGA_EVENT_CONTEXT, alias, payload: { saga: saga.name, sagaId: s.sagaId, status: s.status, ...extra }, now: context.now() })
      const { clientSessionId: _session, ...rest } = base
      const event: Envelope = { ...rest, requestId: s.requestId, ...(s.clientSessionId === undefined ? {} : { clientSessionId: s.clientSessionId }) }
      await context.forward(new StreamRecord(s.sagaId, event, context.now(), traceHeaders(event)), sinkOf(saga.topics.events))
    }

    const messageOf = (s: SagaState, step: number, phase: SagaPhase): ResolvedMessage => {
      const resolved = saga.steps[step]
      if (resolved === undefined) throw new WeirError('WEIR_ERR_PROCESSING', `saga ${saga.name}: no step ${step}`)
      const message = phase === 'do' ? resolved : resolved.compensation
      if (message === undefined) throw new WeirError('WEIR_ERR_PROCESSING', `saga ${saga.name}: step ${resolved.name} has no compensation`)
      return message
    }

    /** Sends attempt `attempt` of a step (or its compensation) and sets its timeout. */
    async function send(s: SagaState, step: number, phase: SagaPhase, attempt: number): Promise<SagaState> {
      const { spec, timeoutMs } = messageOf(s, step, phase)
      const now = context.now()
      const id = stepRequestId(saga.name, { sagaId: s.sagaId, step, phase, attempt })
      const kind = spec.kind ?? 'command'
      const base = followUp(s.parent, {
        kind,
        contextPath: spec.contextPath,
        alias: spec.alias,
        payload: spec.payload(view(s)),
        ...(spec.topicAlias === undefined ? {} : { topicAlias: spec.topicAlias }),
        // A participant does not run a command whose attempt already timed out here.
        ...(kind === 'command' ? { deadline: now + timeoutMs } : {}),
        now,
      })
      // The participant's results go to its own results topic, never to the client that started the saga.
      const { clientSessionId: _session, ...rest } = base
      const message: Envelope = { ...rest, id, requestId: id }
      await context.forward(new StreamRecord(spec.key?.(view(s)) ?? s.sagaId, message, now, traceHeaders(message)), sinkOf(spec.topic))
      await context.timers.set(s.sagaId, now + timeoutMs, { kind: 'timeout', step, phase, attempt } satisfies SagaTimer)
      const name = saga.steps[step]?.name ?? String(step)
      return { ...s, step, phase, attempt, updatedAt: now, history: withHistory(s, entry(phase === 'do' ? 'step-started' : 'compensation-started', { step: name, attempt })) }
    }

    async function save(s: SagaState): Promise<void> {
      await store().put(s.sagaId, s)
    }

    async function end(s: SagaState, status: 'completed' | 'compensated'): Promise<void> {
      const now = context.now()
      const ended: SagaState = { ...s, status, endedAt: now, updatedAt: now, history: withHistory(s, entry(status)) }
      if (status === 'completed') metrics.completed++
      else metrics.compensated++
      await context.timers.set(s.sagaId, now + saga.retentionMs, { kind: 'expire' } satisfies SagaTimer)
      await save(ended)
      await emit(ended, status === 'completed' ? 'saga-completed' : 'saga-compensated', {
        results: ended.results,
        ...(ended.failure === undefined ? {} : { failure: ended.failure }),
      })
      context.commit()
    }

    async function stepCompleted(s: SagaState, reply: Envelope): Promise<void> {
      const name = saga.steps[s.step]?.name ?? String(s.step)
      metrics.stepsCompleted++
      let next: SagaState = { ...s, parent: parentOf(reply), results: { ...s.results, [name]: reply.payload }, history: withHistory(s, entry('step-completed', { step: name, attempt: s.attempt })) }
      await emit(next, 'saga-step-completed', { step: name })
      if (s.step + 1 >= saga.steps.length) return end(next, 'completed')
      next = await send(next, s.step + 1, 'do', 1)
      await save(next)
    }

    async function stepFailed(s: SagaState, failure: Failure, reply: Envelope | undefined): Promise<void> {
      const step = saga.steps[s.step]
      const name = step?.name ?? String(s.step)
      let next: SagaState = { ...s, ...(reply === undefined ? {} : { parent: parentOf(reply) }) }
      if (failure.retriable && step !== undefined && s.attempt <= step.retries) {
        metrics.retries++
        const at = context.now() + backoffDelay(step.policy, s.attempt)
        await context.timers.set(s.sagaId, at, { kind: 'send', step: s.step, phase: 'do', attempt: s.attempt + 1 } satisfies SagaTimer)
        await save({ ...next, attempt: s.attempt + 1, updatedAt: context.now(), history: withHistory(next, entry('step-retried', { step: name, attempt: s.attempt, detail: `${failure.code}: ${failure.message}` })) })
        return
      }
      metrics.stepFailures++
      // Steps done so far, newest first; a step that timed out may still take effect late, so it is undone too.
      const undo: number[] = []
      for (let i = failure.timedOut ? s.step : s.step - 1; i >= 0; i--) if (saga.steps[i]?.compensation !== undefined) undo.push(i)
      next = {
        ...next,
        status: 'compensating',
        undo,
        undoIndex: 0,
        failure: { step: name, code: failure.code, message: failure.message },
        updatedAt: context.now(),
        history: withHistory(next, entry('step-failed', { step: name, attempt: s.attempt, detail: `${failure.code}: ${failure.message}` })),
      }
      await emit(next, 'saga-compensating', { step: name, failure: next.failure })
      await compensateNext(next)
    }

    async function compensateNext(s: SagaState): Promise<void> {
      const step = s.undo[s.undoIndex]
      if (step === undefined) return end(s, 'compensated')
      metrics.compensations++
      await save(await send(s, step, 'undo', 1))
    }

    async function compensationDone(s: SagaState, reply: Envelope): Promise<void> {
      const name = saga.steps[s.step]?.name ?? String(s.step)
      const next: SagaState = { ...s, parent: parentOf(reply), undoIndex: s.undoIndex + 1, history: withHistory(s, entry('compensation-completed', { step: name, attempt: s.attempt })) }
      await emit(next, 'saga-step-compensated', { step: name })
      await compensateNext(next)
    }

    /** A compensation that failed or timed out is tried again, with a growing wait, until it succeeds. */
    async function compensationFailed(s: SagaState, detail: string, reply: Envelope | undefined): Promise<void> {
      const step = saga.steps[s.step]
      const name = step?.name ?? String(s.step)
      metrics.retries++
      const policy = step?.policy
      const delay = Math.min(saga.maxCompensationDelayMs, policy === undefined ? 1000 : backoffDelay({ ...policy, maxDelayMs: saga.maxCompensationDelayMs }, s.attempt))
      await context.timers.set(s.sagaId, context.now() + delay, { kind: 'send', step: s.step, phase: 'undo', attempt: s.attempt + 1 } satisfies SagaTimer)
      await save({
        ...s,
        ...(reply === undefined ? {} : { parent: parentOf(reply) }),
        attempt: s.attempt + 1,
        updatedAt: context.now(),
        history: withHistory(s, entry('compensation-failed', { step: name, attempt: s.attempt, detail })),
      })
    }

    async function start(sagaId: string, envelope: Envelope): Promise<void> {
      if ((await store().get(sagaId)) !== undefined) {
        metrics.duplicateStarts++
        return
      }
      metrics.started++
      const now = context.now()
      const data = saga.definition.start.data === undefined ? envelope.payload : saga.definition.start.data(envelope)
      let s: SagaState = {
        sagaId,
        saga: saga.name,
        status: 'running',
        data,
        results: {},
        step: 0,
        phase: 'do',
        attempt: 1,
        undo: [],
        undoIndex: 0,
        startedAt: now,
        updatedAt: now,
        requestId: envelope.requestId,
        ...(envelope.clientSessionId === undefined ? {} : { clientSessionId: envelope.clientSessionId }),
        parent: parentOf(envelope),
        history: [{ at: now, event: 'started' }],
      }
      await emit(s, 'saga-started', { data })
      s = await send(s, 0, 'do', 1)
      await save(s)
    }

    async function reply(envelope: Envelope): Promise<void> {
      const address = parseStepRequestId(saga.name, envelope.requestId)
      if (address === undefined || (envelope.kind !== 'result' && envelope.kind !== 'event')) {
        metrics.ignored++
        return
      }
      const s = await store().get(address.sagaId)
      if (s === undefined) {
        metrics.unknownReplies++
        throw new WeirError('WEIR_ERR_SAGA_UNKNOWN', `saga ${saga.name} has no saga ${address.sagaId} (a ${envelope.kind} ${envelope.alias} of request ${envelope.requestId})`, {
          details: { saga: saga.name, sagaId: address.sagaId, requestId: envelope.requestId },
        })
      }
      const current = !isEnded(s) && s.step === address.step && s.phase === address.phase && s.attempt === address.attempt
      const message = current ? messageOf(s, s.step, s.phase) : undefined
      if (!current || message === undefined) {
        metrics.staleReplies++
        return
      }
      const completesOn = message.spec.completesOn?.event
      const failsOn = s.phase === 'do' ? saga.steps[s.step]?.spec.failsOn?.event : undefined
      let outcome: 'done' | Failure | undefined
      if (envelope.kind === 'result') {
        if (envelope.status === 'ok') outcome = completesOn === undefined ? 'done' : undefined
        else {
          const payload = (envelope.payload ?? {}) as { code?: unknown; message?: unknown }
          const code = typeof payload.code === 'string' ? payload.code : envelope.status === 'timeout' ? 'WEIR_ERR_DEADLINE_EXCEEDED' : 'WEIR_ERR_PROCESSING'
          outcome = { code, message: typeof payload.message === 'string' ? payload.message : `${envelope.alias} ended ${envelope.status}`, retriable: !NOT_RETRIABLE.has(code), timedOut: envelope.status === 'timeout' }
        }
      } else if (envelope.alias === completesOn) outcome = 'done'
      else if (envelope.alias === failsOn) outcome = { code: 'WEIR_ERR_NON_RETRIABLE', message: `event ${envelope.alias}`, retriable: false, timedOut: false }
      if (outcome === undefined) return
      if (s.phase === 'undo') {
        if (outcome === 'done') await compensationDone(s, envelope)
        else await compensationFailed(s, `${outcome.code}: ${outcome.message}`, envelope)
        return
      }
      if (outcome === 'done') await stepCompleted(s, envelope)
      else await stepFailed(s, outcome, envelope)
    }

    return {
      init(c) {
        context = c
      },
      async process(record: StreamRecord<string, Envelope>) {
        const input = record.headers.get(SAGA_INPUT_HEADER)?.toString()
        if (input === 'start') return start(record.key, record.value)
        return reply(record.value)
      },
      async onTimer(timer: FiredTimer) {
        const due = timer.payload as SagaTimer
        const s = await store().get(timer.key)
        if (s === undefined) return
        if (due.kind === 'expire') {
          if (isEnded(s)) await store().delete(timer.key)
          return
        }
        if (isEnded(s) || s.step !== due.step || s.phase !== due.phase || s.attempt !== due.attempt) return
        if (due.kind === 'send') {
          await save(await send(s, due.step, due.phase, due.attempt))
          return
        }
        metrics.timeouts++
        const timeoutMs = messageOf(s, s.step, s.phase).timeoutMs
        const detail = `no reply within ${timeoutMs} ms`
        if (s.phase === 'undo') await compensationFailed(s, `WEIR_ERR_DEADLINE_EXCEEDED: ${detail}`, undefined)
        else await stepFailed(s, { code: 'WEIR_ERR_DEADLINE_EXCEEDED', message: detail, retriable: true, timedOut: true }, undefined)
      },
    }
  }
}
