// Conversions between weir's record types and @platformatic/kafka's, and error wrapping.
import type { Message, MessageToProduce } from '@platformatic/kafka'

import { kMetadata, kPerformWithRetry } from '@platformatic/kafka'

import { WeirError, invalidOptions } from '../core/errors.ts'
import { platformaticConnection, validateConnection } from './connection.ts'
import type { ConsumedRecord, KafkaClientOptions, OutgoingRecord } from './types.ts'

export function toBuffer(value: Buffer | string): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value
}

export function toMessage(record: OutgoingRecord): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  const message: MessageToProduce<Buffer, Buffer, Buffer, Buffer> = { topic: record.topic }
  if (record.partition !== undefined) message.partition = record.partition
  if (record.key !== undefined && record.key !== null) message.key = toBuffer(record.key)
  // A null value is a tombstone (compacted topics delete the key).
  if (record.value !== null) message.value = toBuffer(record.value)
  if (record.timestamp !== undefined) message.timestamp = record.timestamp
  if (record.headers !== undefined) {
    const headers = new Map<Buffer, Buffer>()
    for (const [name, value] of Object.entries(record.headers)) headers.set(Buffer.from(name, 'utf8'), toBuffer(value))
    message.headers = headers
  }
  return message
}

export function fromMessage(message: Message<Buffer, Buffer, Buffer, Buffer>): ConsumedRecord {
  const headers = new Map<string, Buffer>()
  for (const [name, value] of message.headers) {
    if (name !== undefined && name !== null) headers.set(name.toString('utf8'), value ?? Buffer.alloc(0))
  }
  return {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    timestamp: message.timestamp,
    key: message.key ?? undefined,
    value: message.value ?? undefined,
    headers,
  }
}

const FENCED = new Set(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH'])

/** True when the error says another producer with our transactional id took over (we are a zombie). */
export function isFencedError(error: unknown): boolean {
  return findProtocolIds(error).some((id) => FENCED.has(id))
}

/** True when the broker answered with this protocol error (e.g. TOPIC_ALREADY_EXISTS), however deeply wrapped. */
export function hasProtocolError(error: unknown, id: string): boolean {
  return findProtocolIds(error).includes(id)
}

function findProtocolIds(error: unknown, depth = 0): string[] {
  if (depth > 5 || typeof error !== 'object' || error === null) return []
  const found: string[] = []
  const candidate = error as { apiId?: unknown; errors?: unknown; cause?: unknown }
  if (typeof candidate.apiId === 'string') found.push(candidate.apiId)
  if (Array.isArray(candidate.errors)) for (const inner of candidate.errors) found.push(...findProtocolIds(inner, depth + 1))
  if (candidate.cause !== undefined) found.push(...findProtocolIds(candidate.cause, depth + 1))
  return found
}

/** What the broker answered, as found in a client error: the protocol error's name, numeric code and text. */
export interface BrokerError {
  name: string
  code: number | undefined
  message: string
  /** The client would retry it (the broker may accept the same request later). */
  retriable: boolean
}

/** Every broker error inside a client error (aggregates and causes included), without duplicates. */
export function brokerErrors(error: unknown, depth = 0, found: BrokerError[] = []): BrokerError[] {
  if (depth > 5 || typeof error !== 'object' || error === null) return found
  const candidate = error as { apiId?: unknown; apiCode?: unknown; message?: unknown; serverErrorMessage?: unknown; canRetry?: unknown; errors?: unknown; cause?: unknown }
  if (typeof candidate.apiId === 'string') {
    const text = typeof candidate.serverErrorMessage === 'string' && candidate.serverErrorMessage !== '' ? candidate.serverErrorMessage : String(candidate.message ?? '')
    const entry: BrokerError = { name: candidate.apiId, code: typeof candidate.apiCode === 'number' ? candidate.apiCode : undefined, message: text, retriable: candidate.canRetry === true }
    if (!found.some((f) => f.name === entry.name && f.message === entry.message)) found.push(entry)
  }
  if (Array.isArray(candidate.errors)) for (const inner of candidate.errors) brokerErrors(inner, depth + 1, found)
  if (candidate.cause !== undefined) brokerErrors(candidate.cause, depth + 1, found)
  return found
}

// The client's own message is generic ("Producing messages failed"): the broker's answer goes into the
// message and into details.brokerErrors, and the client error stays as `cause`.
/** What a failed call was doing, so a refusal by the broker's authorizer can name the operation and resource. */
export interface AccessHint {
  /** The ACL operation the call needs (Read, Write, Create, Describe, IdempotentWrite ...). */
  readonly operation: string
  readonly topics?: readonly string[]
  readonly group?: string
  readonly transactionalId?: string
}

const AUTHORIZATION: Record<string, 'Topic' | 'Group' | 'Cluster' | 'TransactionalId'> = {
  TOPIC_AUTHORIZATION_FAILED: 'Topic',
  GROUP_AUTHORIZATION_FAILED: 'Group',
  CLUSTER_AUTHORIZATION_FAILED: 'Cluster',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'TransactionalId',
}

// Node's certificate errors (tls.connect), and the OpenSSL errors of a handshake with a peer that does not speak TLS.
const TLS_ERRORS = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|CERT_|HOSTNAME_MISMATCH)/

/** Every error in the chain: itself, its causes and the errors it aggregates (depth-limited). */
function errorChain(error: unknown, depth = 0, found: object[] = []): object[] {
  if (depth > 6 || typeof error !== 'object' || error === null || found.includes(error)) return found
  found.push(error)
  const candidate = error as { errors?: unknown; cause?: unknown }
  if (Array.isArray(candidate.errors)) for (const inner of candidate.errors) errorChain(inner, depth + 1, found)
  if (candidate.cause !== undefined) errorChain(candidate.cause, depth + 1, found)
  return found
}

type ConnectionFailure = { kind: 'authentication'; detail: string } | { kind: 'tls'; detail: string }

/** A failure no retry can fix: the credentials were refused, or the broker's certificate is not trusted. */
export function connectionFailure(error: unknown): ConnectionFailure | undefined {
  for (const node of errorChain(error)) {
    const e = node as { code?: unknown; apiId?: unknown; message?: unknown; serverErrorMessage?: unknown }
    if (e.code === 'PLT_KFK_AUTHENTICATION' || e.apiId === 'SASL_AUTHENTICATION_FAILED' || e.apiId === 'UNSUPPORTED_SASL_MECHANISM' || e.apiId === 'ILLEGAL_SASL_STATE') {
      const server = errorChain(node).map((n) => (n as { serverErrorMessage?: unknown }).serverErrorMessage).find((m) => typeof m === 'string' && m.length > 0)
      return { kind: 'authentication', detail: typeof server === 'string' ? server : String(e.message) }
    }
    if (typeof e.code === 'string' && TLS_ERRORS.test(e.code)) return { kind: 'tls', detail: `${e.code}: ${String(e.message)}` }
    if (typeof e.message === 'string' && e.message.startsWith('TLS handshake failed')) return { kind: 'tls', detail: e.message }
  }
  return undefined
}

const TOPIC_AUTHORIZATION_FAILED = 29

/** Names of the topics a broker response refused (TOPIC_AUTHORIZATION_FAILED on the topic or one of its partitions). */
function refusedTopics(error: unknown): string[] {
  const names = new Set<string>()
  const refused = (value: unknown, depth: number): boolean => {
    if (depth > 4 || typeof value !== 'object' || value === null) return false
    if ((value as { errorCode?: unknown }).errorCode === TOPIC_AUTHORIZATION_FAILED) return true
    return Object.values(value).some((v) => (Array.isArray(v) ? v.some((item) => refused(item, depth + 1)) : false))
  }
  const walk = (value: unknown, depth: number): void => {
    if (depth > 4 || typeof value !== 'object' || value === null) return
    const name = (value as { name?: unknown }).name
    if (typeof name === 'string' && refused(value, 0)) names.add(name)
    for (const v of Object.values(value)) if (Array.isArray(v)) for (const item of v) walk(item, depth + 1)
  }
  for (const node of errorChain(error)) walk((node as { response?: unknown }).response, 0)
  return [...names]
}

function authorizationFailure(error: unknown): string | undefined {
  return findProtocolIds(error).find((id) => AUTHORIZATION[id] !== undefined)
}

export function wrapKafkaError(error: unknown, what: string, access?: AccessHint): WeirError {
  if (error instanceof WeirError) return error
  if (isFencedError(error)) return new WeirError('WEIR_ERR_KAFKA_FENCED', `${what}: producer fenced by a newer instance`, { cause: error })
  const failure = connectionFailure(error)
  if (failure?.kind === 'authentication') {
    // The handshake itself failed: the connection dropped (a TLS listener reached without TLS) or the mechanism is off.
    const reason = failure.detail.startsWith('Cannot find a suitable SASL mechanism')
      ? 'the SASL handshake failed (a listener that needs TLS reached without it, or a mechanism the listener does not enable)'
      : 'the broker refused the SASL credentials (wrong user name or password, or a mechanism it does not enable)'
    return new WeirError('WEIR_ERR_KAFKA_AUTHENTICATION', `${what}: ${reason}: ${failure.detail}`, {
      cause: error,
      details: { retriable: false },
    })
  }
  if (failure?.kind === 'tls') {
    return new WeirError('WEIR_ERR_KAFKA_TLS', `${what}: TLS to the broker failed (a CA that does not sign its certificate, a name that does not match, or a listener without TLS): ${failure.detail}`, {
      cause: error,
      details: { retriable: false },
    })
  }
  const denied = authorizationFailure(error)
  if (denied !== undefined) {
    const resourceType = AUTHORIZATION[denied] as string
    const name =
      resourceType === 'Topic' ? (refusedTopics(error).join(', ') || access?.topics?.join(', ')) : resourceType === 'Group' ? access?.group : resourceType === 'TransactionalId' ? access?.transactionalId : 'kafka-cluster'
    const operation = access?.operation ?? 'unknown'
    return new WeirError('WEIR_ERR_KAFKA_AUTHORIZATION', `${what}: not authorized: ${operation} on ${resourceType} ${name ?? '(unknown)'} (${denied}: the principal lacks that ACL)`, {
      cause: error,
      details: { resourceType, resourceName: name, operation, retriable: false },
    })
  }
  const message = error instanceof Error ? error.message : String(error)
  const broker = brokerErrors(error)
  const said = broker.map((b) => `${b.name}${b.code === undefined ? '' : ` (${b.code})`}: ${b.message}`).join('; ')
  return new WeirError('WEIR_ERR_KAFKA', `${what}: ${message}${said === '' ? '' : ` broker: ${said}`}`, {
    cause: error,
    ...(broker.length === 0 ? {} : { details: { brokerErrors: broker } }),
  })
}

const NOT_RETRIABLE = new Set(['WEIR_ERR_KAFKA_AUTHENTICATION', 'WEIR_ERR_KAFKA_TLS', 'WEIR_ERR_KAFKA_AUTHORIZATION'])

/** A refused login, an untrusted certificate or a missing ACL (here or in its causes): retrying cannot fix it. */
export function isSecurityError(error: unknown): boolean {
  return errorChain(error).some((node) => node instanceof WeirError && NOT_RETRIABLE.has(node.code))
}

type RetryingClient = Record<symbol, (...args: unknown[]) => unknown>

/**
 * How long a client keeps retrying one operation, by the client's own operation id ('produce', 'endTransaction',
 * 'findCoordinator', 'commit' ...), and how long it waits between attempts. Without one, a client makes
 * `retries` attempts (baseClientOptions).
 */
export interface RetryPolicy {
  /** The budget of one operation, ms: attempts stop once it is spent (the last one may take a request timeout more). */
  budgetMs(operationId: string): number
  /** First wait between attempts, ms (Java's retry.backoff.ms); doubled per attempt up to backoffMaxMs. */
  readonly backoffMs: number
  /** Longest wait between attempts, ms (Java's retry.backoff.max.ms). */
  readonly backoffMaxMs: number
}

/**
 * @platformatic/kafka wraps a refused login or an untrusted certificate in a retriable network error, so each
 * call would try again for all its retries. Every client weir creates stops retrying those at once.
 * With a policy, retriable errors are retried until the operation's budget is spent instead of a fixed number
 * of times (a leader election after a broker dies takes longer than the client's 8 retries), and a produce that
 * meets stale metadata (NOT_LEADER_OR_FOLLOWER ...) is retried in the same loop with fresh metadata (the client
 * alone repeats it once and then gives up).
 */
export function stopRetryingFatalErrors<T extends object>(client: T, policy?: RetryPolicy): T {
  const target = client as unknown as RetryingClient
  const original = target[kPerformWithRetry] as (...args: unknown[]) => unknown
  target[kPerformWithRetry] = function (this: unknown, operationId: unknown, operation: unknown, callback: unknown, attempt?: unknown, errors?: unknown, shouldSkipRetry?: unknown, retryLimit?: unknown) {
    const skip = shouldSkipRetry as ((error: unknown) => boolean) | undefined
    if ((skip as { fatalGuard?: true } | undefined)?.fatalGuard === true) return original.call(this, operationId, operation, callback, attempt, errors, skip, retryLimit)
    // An explicit limit (the client's metadata lookups inside produce pass 0) is the caller's to keep.
    const deadline = policy === undefined || retryLimit !== undefined ? undefined : Date.now() + policy.budgetMs(String(operationId))
    const guarded = Object.assign(
      (error: unknown) => {
        if (connectionFailure(error) !== undefined) return true
        if (deadline !== undefined) {
          if (Date.now() >= deadline) return true
          if (operationId === 'produce') return false
        }
        return skip?.(error) === true
      },
      { fatalGuard: true as const },
    )
    return original.call(this, operationId, operation, callback, attempt, errors, guarded, deadline === undefined ? retryLimit : Number.POSITIVE_INFINITY)
  }
  completeMetadata(target)
  return client
}

type MetadataCallback = (error: Error | null, metadata?: { topics: Map<string, unknown> }) => void

/**
 * A metadata lookup answers every topic it was asked for. The client fetches only the topics missing from its
 * cache and then builds the answer from the cache; when a retry elsewhere dropped the cache meanwhile (after a
 * broker died: stale metadata), the answer lacks the cached topics, and the client's transactional send then
 * throws a TypeError outside any callback (the process dies). Such an answer is asked again, for every topic.
 */
function completeMetadata(target: RetryingClient): void {
  const original = target[kMetadata] as (options: { topics?: string[]; forceUpdate?: boolean }, callback: MetadataCallback) => void
  target[kMetadata] = function (this: unknown, ...args: unknown[]) {
    const [options, callback] = args as [{ topics?: string[]; forceUpdate?: boolean }, MetadataCallback]
    const wanted = [...(options.topics ?? [])]
    original.call(this, options, (error, metadata) => {
      if (error || metadata === undefined || wanted.every((topic) => metadata.topics.get(topic) !== undefined)) return callback(error, metadata)
      original.call(this, { ...options, topics: wanted, forceUpdate: true }, callback)
    })
  }
}

export function validateClientOptions(component: string, options: KafkaClientOptions, violations: string[] = []): void {
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) {
    violations.push('brokers must be a non-empty array of host:port strings')
  } else {
    for (const broker of options.brokers) {
      if (typeof broker !== 'string' || !/^[^:\s]+:\d+$/.test(broker)) violations.push(`broker ${JSON.stringify(broker)} is not host:port`)
    }
  }
  if (options.requestTimeoutMs !== undefined && !(Number.isInteger(options.requestTimeoutMs) && options.requestTimeoutMs > 0)) {
    violations.push('requestTimeoutMs must be a positive integer')
  }
  validateConnection(options.connection, violations)
  if (violations.length > 0) throw invalidOptions(component, violations)
}

// Errors the broker reports while a previous transaction's markers are still being written, or while a
// coordinator moves: retried quickly (the Java client uses a short backoff here too), everything else
// backs off exponentially. The quick steps double from 2 ms (2, 4, 8 ... 256: 510 ms over the 8 retries):
// the next transaction's AddPartitionsToTxn meets CONCURRENT_TRANSACTIONS in about one commit of eight here,
// and the markers are usually written a few milliseconds later, so a longer first wait would be added to every
// such commit (docs/architecture.md, "Working around @platformatic/kafka").
const QUICK_RETRY = new Set(['CONCURRENT_TRANSACTIONS', 'COORDINATOR_LOAD_IN_PROGRESS', 'NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE'])

export function retryDelayMs(_client: unknown, _operation: string, attempt: number, _retries: number, error: Error): number {
  if (findProtocolIds(error).some((id) => QUICK_RETRY.has(id))) return 2 ** Math.min(attempt, 10)
  return Math.min(100 * 2 ** (attempt - 1), 2000) + Math.floor(Math.random() * 50)
}

/**
 * Waits of a client with a RetryPolicy: the quick steps above, else exponential from backoffMs to backoffMaxMs
 * with 20 % jitter (as the Java client). Before the next attempt the cached metadata is dropped when the error
 * says it is stale or the connection failed, so the attempt asks the cluster where the leader or coordinator is now.
 */
export function policyRetryDelay(policy: RetryPolicy) {
  return (client: unknown, _operation: string, attempt: number, _retries: number, error: Error): number => {
    const stale = errorChain(error).some((e) => (e as { hasStaleMetadata?: unknown }).hasStaleMetadata === true || (e as { code?: unknown }).code === 'PLT_KFK_NETWORK')
    if (stale) (client as { clearMetadata?: () => void }).clearMetadata?.()
    if (findProtocolIds(error).some((id) => QUICK_RETRY.has(id))) return 2 ** Math.min(attempt, 10)
    const base = Math.min(policy.backoffMs * 2 ** Math.min(attempt - 1, 30), policy.backoffMaxMs)
    return Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)))
  }
}

export function baseClientOptions(options: KafkaClientOptions, fallbackClientId: string, policy?: RetryPolicy) {
  return {
    clientId: options.clientId ?? fallbackClientId,
    bootstrapBrokers: [...options.brokers],
    retries: 8,
    retryDelay: policy === undefined ? retryDelayMs : policyRetryDelay(policy),
    ...(options.requestTimeoutMs === undefined ? {} : { timeout: options.requestTimeoutMs }),
    ...platformaticConnection(options.connection),
  }
}
