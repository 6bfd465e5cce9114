// Conversions between weir's record types and @platformatic/kafka's, and error wrapping.
import type { Message, MessageToProduce } from '@platformatic/kafka'

import { WeirError, invalidOptions } from '../core/errors.ts'
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

const FENCED = new Set(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'])

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
export function wrapKafkaError(error: unknown, what: string): WeirError {
  if (error instanceof WeirError) return error
  if (isFencedError(error)) return new WeirError('WEIR_ERR_KAFKA_FENCED', `${what}: producer fenced by a newer instance`, { cause: error })
  const message = error instanceof Error ? error.message : String(error)
  const broker = brokerErrors(error)
  const said = broker.map((b) => `${b.name}${b.code === undefined ? '' : ` (${b.code})`}: ${b.message}`).join('; ')
  return new WeirError('WEIR_ERR_KAFKA', `${what}: ${message}${said === '' ? '' : ` broker: ${said}`}`, {
    cause: error,
    ...(broker.length === 0 ? {} : { details: { brokerErrors: broker } }),
  })
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
  if (violations.length > 0) throw invalidOptions(component, violations)
}

// Errors the broker reports while a previous transaction's markers are still being written, or while a
// coordinator moves: retried quickly (the Java client uses a short backoff here too), everything else
// backs off exponentially. The quick steps double from 2 ms (2, 4, 8 ... 256: 510 ms over the 8 retries):
// the next transaction's AddPartitionsToTxn meets CONCURRENT_TRANSACTIONS in about one commit of eight here,
// and the markers are usually written a few milliseconds later, so a first wait of 10 ms (the steps until
// 2026-12) put 10 ms on those commits (a transaction probe: send p90 13 ms -> 5 ms).
const QUICK_RETRY = new Set(['CONCURRENT_TRANSACTIONS', 'COORDINATOR_LOAD_IN_PROGRESS', 'NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE'])

export function retryDelayMs(_client: unknown, _operation: string, attempt: number, _retries: number, error: Error): number {
  if (findProtocolIds(error).some((id) => QUICK_RETRY.has(id))) return 2 ** Math.min(attempt, 10)
  return Math.min(100 * 2 ** (attempt - 1), 2000) + Math.floor(Math.random() * 50)
}

export function baseClientOptions(options: KafkaClientOptions, fallbackClientId: string) {
  return {
    clientId: options.clientId ?? fallbackClientId,
    bootstrapBrokers: [...options.brokers],
    retries: 8,
    retryDelay: retryDelayMs,
    ...(options.requestTimeoutMs === undefined ? {} : { timeout: options.requestTimeoutMs }),
  }
}
