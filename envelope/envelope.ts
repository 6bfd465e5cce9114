// The envelope every weir message travels in (the seed platform's PlatformMessage).
import { randomBytes, randomUUID } from 'node:crypto'

export type EnvelopeKind = 'command' | 'result' | 'event'
export type ResultStatus = 'ok' | 'error' | 'timeout'

/** One ancestor of a message: what led to it, oldest first. */
export interface Breadcrumb {
  readonly id: string
  readonly kind: EnvelopeKind
  readonly contextPath: string
  readonly alias: string
  readonly at: number
}

/** W3C trace context (https://www.w3.org/TR/trace-context/). */
export interface TraceContext {
  readonly traceparent: string
  readonly tracestate?: string
}

export interface RetryState {
  /** May this message be retried out of order (re-scheduled through the delayed-envelope store)? */
  readonly outOfOrder: boolean
  /** How many out-of-order retries happened so far. */
  readonly count: number
}

/** Who a command was sent by: the authenticated subject and its roles, stamped by the gateway on command envelopes. */
export interface Actor {
  readonly sub: string
  readonly roles: readonly string[]
}

/**
 * Where a payload too large for a record lives (the claim check, docs/payloads.md): the envelope's `payload` is
 * nil and the reader fetches the blob, checking its size and SHA-256.
 */
export interface BlobRef {
  /** The blob store's name (a reader refuses a store it does not have). */
  readonly store: string
  readonly key: string
  /** Bytes of the blob. */
  readonly size: number
  /** SHA-256 of the blob's bytes, 64 lower-case hex digits. */
  readonly sha256: string
  /** What the bytes are: `application/msgpack` for a payload weir offloaded (the msgpack of the payload value). */
  readonly contentType: string
}

export interface Envelope<Payload = unknown> {
  /** Unique id of this message. */
  readonly id: string
  /** Id of the request that started the business process; carried by every follow-up. */
  readonly requestId: string
  /** The client session a result must go back to. */
  readonly clientSessionId?: string
  readonly kind: EnvelopeKind
  /** Alias of the topic the message is addressed to (commands: `topicAlias/contextPath/commandAlias`). */
  readonly topicAlias?: string
  readonly contextPath: string
  /** Command, result or event alias. */
  readonly alias: string
  readonly payload: Payload
  /** Result outcome, only on kind 'result'. */
  readonly status?: ResultStatus
  /** Creation time, ms since the epoch. */
  readonly createdAt: number
  /** Absolute deadline (ms since the epoch) derived from the command's TTL. */
  readonly deadline?: number
  readonly breadcrumbs: readonly Breadcrumb[]
  readonly retry?: RetryState
  readonly trace?: TraceContext
  /** The authenticated sender of a command (absent on messages the services create themselves). */
  readonly actor?: Actor
  /** The payload's blob, when it is stored by reference (then `payload` is null). */
  readonly payloadRef?: BlobRef
}

export interface CreateEnvelopeInput<Payload> {
  kind: EnvelopeKind
  contextPath: string
  alias: string
  payload: Payload
  topicAlias?: string
  requestId?: string
  clientSessionId?: string
  status?: ResultStatus
  /** Time to live in ms; sets `deadline` = now + ttl. */
  ttlMs?: number
  deadline?: number
  retry?: RetryState
  trace?: TraceContext
  actor?: Actor
  /** The payload by reference (then `payload` is null). */
  payloadRef?: BlobRef
  id?: string
  now?: number
}

/** Breadcrumbs kept per message; older ancestry is dropped so long chains cannot grow a message without bound. */
export const MAX_BREADCRUMBS = 32

export function createEnvelope<Payload>(input: CreateEnvelopeInput<Payload>): Envelope<Payload> {
  const now = input.now ?? Date.now()
  const id = input.id ?? randomUUID()
  const deadline = input.deadline ?? (input.ttlMs === undefined ? undefined : now + input.ttlMs)
  return Object.freeze({
    id,
    requestId: input.requestId ?? id,
    ...(input.clientSessionId === undefined ? {} : { clientSessionId: input.clientSessionId }),
    kind: input.kind,
    ...(input.topicAlias === undefined ? {} : { topicAlias: input.topicAlias }),
    contextPath: input.contextPath,
    alias: input.alias,
    payload: input.payload,
    ...(input.status === undefined ? {} : { status: input.status }),
    createdAt: now,
    ...(deadline === undefined ? {} : { deadline }),
    breadcrumbs: Object.freeze([]),
    ...(input.retry === undefined ? {} : { retry: Object.freeze({ ...input.retry }) }),
    trace: input.trace ?? newTrace(),
    ...(input.actor === undefined ? {} : { actor: Object.freeze({ sub: input.actor.sub, roles: Object.freeze([...input.actor.roles]) }) }),
    ...(input.payloadRef === undefined ? {} : { payloadRef: Object.freeze({ ...input.payloadRef }) }),
  })
}

export interface FollowUpInput<Payload> {
  kind: EnvelopeKind
  alias: string
  payload: Payload
  /** Defaults to the parent's context path. */
  contextPath?: string
  topicAlias?: string
  status?: ResultStatus
  /** Follow-ups do not inherit the parent's deadline unless asked to. */
  deadline?: number
  retry?: RetryState
  /**
   * Follow-ups do not inherit the parent's actor: a result, an event or a further command is the service acting,
   * not the user, and a downstream service must not take a user's roles as its own authority. A handler that
   * does act on the user's behalf passes `actor: parent.actor` explicitly.
   */
  actor?: Actor
  now?: number
}

/**
 * A message caused by `parent`: same requestId, client session and trace (as a child span),
 * with the parent appended to the breadcrumbs. Deadline and actor are not inherited unless given.
 */
export function followUp<Payload>(parent: Envelope, input: FollowUpInput<Payload>): Envelope<Payload> {
  const now = input.now ?? Date.now()
  const crumb: Breadcrumb = Object.freeze({
    id: parent.id,
    kind: parent.kind,
    contextPath: parent.contextPath,
    alias: parent.alias,
    at: parent.createdAt,
  })
  const breadcrumbs = [...parent.breadcrumbs, crumb].slice(-MAX_BREADCRUMBS)
  const envelope = createEnvelope<Payload>({
    kind: input.kind,
    contextPath: input.contextPath ?? parent.contextPath,
    alias: input.alias,
    payload: input.payload,
    requestId: parent.requestId,
    ...(parent.clientSessionId === undefined ? {} : { clientSessionId: parent.clientSessionId }),
    ...(input.topicAlias === undefined ? {} : { topicAlias: input.topicAlias }),
    ...(input.status === undefined ? {} : { status: input.status }),
    ...(input.deadline === undefined ? {} : { deadline: input.deadline }),
    ...(input.retry === undefined ? {} : { retry: input.retry }),
    ...(input.actor === undefined ? {} : { actor: input.actor }),
    trace: childTrace(parent.trace),
    now,
  })
  return Object.freeze({ ...envelope, breadcrumbs: Object.freeze(breadcrumbs) })
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

export function isTraceparent(value: string): boolean {
  const m = TRACEPARENT.exec(value)
  return m !== null && !/^0+$/.test(m[1] as string) && !/^0+$/.test(m[2] as string)
}

// Random ids for traces and spans come from a pooled buffer: one randomBytes call per 512 ids instead of one
// per message (a synchronous randomBytes call per message showed up in profiles of the command service).
let pool = Buffer.alloc(0)
let poolOffset = 0
function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    pool = randomBytes(4096)
    poolOffset = 0
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes)
  poolOffset += bytes
  return hex
}

function newTrace(): TraceContext {
  return { traceparent: `00-${randomHex(16)}-${randomHex(8)}-01` }
}

/** A new span: a child of `traceparent` when it is a valid one (same trace id and flags), else a new trace. */
export function spanFrom(traceparent: string | undefined): TraceContext {
  return traceparent !== undefined && isTraceparent(traceparent) ? childTrace({ traceparent }) : newTrace()
}

/** Same trace id, a new span id whose parent is the given span. */
function childTrace(parent: TraceContext | undefined): TraceContext {
  const m = parent === undefined ? null : TRACEPARENT.exec(parent.traceparent)
  if (m === null || parent === undefined) return newTrace()
  const child: TraceContext = { traceparent: `00-${m[1]}-${randomHex(8)}-${m[3]}` }
  return parent.tracestate === undefined ? child : { ...child, tracestate: parent.tracestate }
}

/** The span id of a message: the parent id for anything it causes. */
export function spanId(trace: TraceContext): string | undefined {
  return TRACEPARENT.exec(trace.traceparent)?.[2]
}

export function traceId(trace: TraceContext): string | undefined {
  return TRACEPARENT.exec(trace.traceparent)?.[1]
}
