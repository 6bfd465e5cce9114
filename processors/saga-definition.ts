// A saga's declaration: what starts it, its steps (the message that starts each, what completes or fails it,
// its compensation, timeout and retries), validated at once, and the request ids that tie a reply to its step.
//
// Every message a saga sends has a request id (and envelope id) `saga:<name>:<sagaId>:<step>:<phase>:<attempt>`.
// A participant's result and the events its handler emits are follow-ups of that message, so they carry the
// request id back: the saga's router reads it to find the saga and the step, whatever the participant is.
import { invalidOptions } from '../core/errors.ts'
import type { Envelope, EnvelopeKind } from '../envelope/envelope.ts'
import { resolveRetryPolicy } from './retry.ts'
import type { RetryPolicy } from './retry.ts'

/** What a step's payload and key functions see. */
export interface SagaView<D = unknown> {
  readonly sagaId: string
  /** What the start message gave (the definition's `start.data`). */
  readonly data: D
  /** The payload of each completed step's completing result or event, by step name. */
  readonly results: Readonly<Record<string, unknown>>
}

/** A message the saga sends: a command to a participant's commands topic (or an event for it to react to). */
export interface SagaMessageSpec<D = unknown> {
  readonly topic: string
  /** Default 'command'. */
  readonly kind?: Extract<EnvelopeKind, 'command' | 'event'>
  readonly topicAlias?: string
  readonly contextPath: string
  readonly alias: string
  readonly payload: (saga: SagaView<D>) => unknown
  /** The record key (the participant's partition); default the saga id. */
  readonly key?: (saga: SagaView<D>) => string
  /** What completes it: the message's `ok` result (default), or an event of this alias that the participant emits. */
  readonly completesOn?: { readonly event: string }
  /** How long one attempt may take before it counts as timed out, ms (default 30 s). */
  readonly timeoutMs?: number
}

export interface SagaStepSpec<D = unknown> extends SagaMessageSpec<D> {
  readonly name: string
  /** An event alias that fails the step at once (like a `WEIR_ERR_NON_RETRIABLE` error result). */
  readonly failsOn?: { readonly event: string }
  /**
   * Extra attempts after a timeout or a retriable error result (default 0), each after a backoff of
   * `retry` (attempts are counted here, so `retry.attempts` is ignored).
   */
  readonly retries?: number
  readonly retry?: Partial<Omit<RetryPolicy, 'attempts'>>
  /** Undoes the step; run (in reverse step order) when a later step fails. Retried until it succeeds. */
  readonly compensation?: SagaMessageSpec<D>
}

export interface SagaStartSpec<D = unknown> {
  /** The topic the starting message arrives on. */
  readonly topic: string
  /** Its alias, and kind (default 'event'). */
  readonly alias: string
  readonly kind?: EnvelopeKind
  /** The saga's id (the key of its state): one saga per id; a second start of an id is ignored. */
  readonly sagaId: (envelope: Envelope) => string | undefined
  /** The saga's data (default the message's payload). */
  readonly data?: (envelope: Envelope) => D
}

export interface SagaDefinition<D = unknown> {
  /** Letters, digits, `.`, `_`, `-` (it is part of request ids, store and topic names). */
  readonly name: string
  readonly start: SagaStartSpec<D>
  readonly steps: ReadonlyArray<SagaStepSpec<D>>
  /** The participants' results and events topics, where the steps' replies arrive. */
  readonly replyTopics: readonly string[]
  readonly topics?: {
    /** Replies and starts, re-keyed by saga id (default `<name>.saga-inbox`). */
    readonly inbox?: string
    /** The saga's own events: saga-started, saga-step-completed, ..., saga-completed, saga-compensated (default `<name>.saga-events`). */
    readonly events?: string
  }
  /** How long an ended saga's state is kept (for `weir saga inspect` and to recognise late replies), ms; default 7 days. */
  readonly retentionMs?: number
  /** Longest wait between compensation attempts, ms (default 60 s). */
  readonly maxCompensationDelayMs?: number
}

export interface ResolvedMessage {
  readonly spec: SagaMessageSpec
  readonly timeoutMs: number
}

export interface ResolvedStep extends ResolvedMessage {
  readonly name: string
  readonly spec: SagaStepSpec
  readonly retries: number
  readonly policy: RetryPolicy
  readonly compensation: ResolvedMessage | undefined
}

export interface ResolvedSaga {
  readonly name: string
  readonly definition: SagaDefinition
  readonly steps: readonly ResolvedStep[]
  readonly topics: { readonly inbox: string; readonly events: string }
  readonly retentionMs: number
  readonly maxCompensationDelayMs: number
}

const NAME = /^[A-Za-z0-9._-]{1,100}$/
const DEFAULT_TIMEOUT_MS = 30_000
const isPositiveInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0

function messageViolations(where: string, spec: SagaMessageSpec | undefined): string[] {
  if (typeof spec !== 'object' || spec === null) return [`${where} must be an object`]
  const v: string[] = []
  for (const field of ['topic', 'contextPath', 'alias'] as const) {
    if (typeof spec[field] !== 'string' || spec[field].length === 0) v.push(`${where}.${field} must be a non-empty string`)
  }
  if (typeof spec.payload !== 'function') v.push(`${where}.payload must be a function of the saga`)
  if (spec.key !== undefined && typeof spec.key !== 'function') v.push(`${where}.key must be a function of the saga`)
  if (spec.kind !== undefined && spec.kind !== 'command' && spec.kind !== 'event') v.push(`${where}.kind must be 'command' or 'event'`)
  if (spec.kind === 'event' && spec.completesOn === undefined) v.push(`${where}: an event has no result; completesOn.event must name the event that completes it`)
  if (spec.completesOn !== undefined && (typeof spec.completesOn.event !== 'string' || spec.completesOn.event.length === 0)) v.push(`${where}.completesOn.event must be a non-empty string`)
  if (spec.timeoutMs !== undefined && !isPositiveInt(spec.timeoutMs)) v.push(`${where}.timeoutMs must be an integer > 0`)
  return v
}

/** Validates a definition (every problem at once, WEIR_ERR_INVALID_OPTIONS) and fills in the defaults. */
export function resolveSaga(definition: SagaDefinition): ResolvedSaga {
  const v: string[] = []
  const name = definition?.name
  if (typeof name !== 'string' || !NAME.test(name)) v.push('name must be 1-100 letters, digits, ".", "_" or "-"')
  const start = definition?.start
  if (typeof start !== 'object' || start === null) v.push('start must be an object')
  else {
    if (typeof start.topic !== 'string' || start.topic.length === 0) v.push('start.topic must be a non-empty string')
    if (typeof start.alias !== 'string' || start.alias.length === 0) v.push('start.alias must be a non-empty string')
    if (typeof start.sagaId !== 'function') v.push('start.sagaId must be a function of the start envelope')
    if (start.data !== undefined && typeof start.data !== 'function') v.push('start.data must be a function of the start envelope')
  }
  const steps = Array.isArray(definition?.steps) ? definition.steps : []
  if (steps.length === 0) v.push('steps must be a non-empty array')
  const names = new Set<string>()
  const resolved: ResolvedStep[] = []
  steps.forEach((step, i) => {
    const where = `steps[${i}]`
    v.push(...messageViolations(where, step))
    if (typeof step?.name !== 'string' || step.name.length === 0) v.push(`${where}.name must be a non-empty string`)
    else if (names.has(step.name)) v.push(`${where}.name ${step.name} is used twice`)
    else names.add(step.name)
    if (step?.retries !== undefined && !(Number.isInteger(step.retries) && step.retries >= 0)) v.push(`${where}.retries must be an integer >= 0`)
    if (step?.failsOn !== undefined && (typeof step.failsOn.event !== 'string' || step.failsOn.event.length === 0)) v.push(`${where}.failsOn.event must be a non-empty string`)
    if (step?.compensation !== undefined) v.push(...messageViolations(`${where}.compensation`, step.compensation))
    let policy: RetryPolicy | undefined
    try {
      policy = resolveRetryPolicy({ baseDelayMs: 500, maxDelayMs: 10_000, maxTotalMs: Number.MAX_SAFE_INTEGER, jitter: 'none', ...step?.retry, attempts: 1 })
    } catch (error) {
      v.push(`${where}.retry: ${error instanceof Error ? error.message : String(error)}`)
    }
    if (policy !== undefined && typeof step === 'object' && step !== null) {
      const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS
      resolved.push({
        name: step.name,
        spec: step,
        timeoutMs,
        retries: step.retries ?? 0,
        policy,
        compensation: step.compensation === undefined ? undefined : { spec: step.compensation, timeoutMs: step.compensation.timeoutMs ?? timeoutMs },
      })
    }
  })
  if (!Array.isArray(definition?.replyTopics) || definition.replyTopics.some((t) => typeof t !== 'string' || t.length === 0)) v.push('replyTopics must be an array of topic names')
  const retentionMs = definition?.retentionMs ?? 7 * 24 * 3_600_000
  if (!isPositiveInt(retentionMs)) v.push('retentionMs must be an integer > 0')
  const maxCompensationDelayMs = definition?.maxCompensationDelayMs ?? 60_000
  if (!isPositiveInt(maxCompensationDelayMs)) v.push('maxCompensationDelayMs must be an integer > 0')
  const topics = { inbox: definition?.topics?.inbox ?? `${name}.saga-inbox`, events: definition?.topics?.events ?? `${name}.saga-events` }
  if (Array.isArray(definition?.replyTopics) && (definition.replyTopics.includes(topics.inbox) || start?.topic === topics.inbox)) v.push('the inbox topic must not be a reply or start topic')
  if (v.length > 0) throw invalidOptions(`saga ${String(name)}`, v)
  return Object.freeze({ name, definition, steps: Object.freeze(resolved), topics: Object.freeze(topics), retentionMs, maxCompensationDelayMs })
}

export type SagaPhase = 'do' | 'undo'

/** Where a reply belongs: saga, step (index), phase and attempt. */
export interface StepAddress {
  readonly sagaId: string
  readonly step: number
  readonly phase: SagaPhase
  readonly attempt: number
}

/** The request id (and envelope id) of one attempt of a step or of its compensation. */
export function stepRequestId(saga: string, address: StepAddress): string {
  return `saga:${saga}:${address.sagaId}:${address.step}:${address.phase}:${address.attempt}`
}

/** The address in a request id of this saga's messages; undefined for any other request id. */
export function parseStepRequestId(saga: string, requestId: string): StepAddress | undefined {
  const prefix = `saga:${saga}:`
  if (!requestId.startsWith(prefix)) return undefined
  // The saga id may hold ':', so the fixed fields are read from the right.
  const parts = requestId.slice(prefix.length).split(':')
  if (parts.length < 4) return undefined
  const attempt = Number(parts.pop())
  const phase = parts.pop()
  const step = Number(parts.pop())
  const sagaId = parts.join(':')
  if (sagaId.length === 0 || !Number.isSafeInteger(step) || step < 0 || !Number.isSafeInteger(attempt) || attempt < 1) return undefined
  if (phase !== 'do' && phase !== 'undo') return undefined
  return { sagaId, step, phase, attempt }
}
