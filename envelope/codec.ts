// msgpack wire format of the envelope: one msgpack map with a schema version field `v`.
// Decoding never throws anything but an EnvelopeError, which keeps the raw bytes for the dead-letter topic.
import { Packr, Unpackr } from 'msgpackr'

import { EnvelopeError, invalidOptions } from '../core/errors.ts'
import { isTraceparent } from './envelope.ts'
import { holdsNeverUsed } from './never-used.ts'
import type { Breadcrumb, Envelope, EnvelopeKind, ResultStatus } from './envelope.ts'

export const ENVELOPE_SCHEMA_VERSION = 1
/** Kafka's default max.message.bytes is about 1 MB; an envelope must fit in one record. */
export const DEFAULT_MAX_ENVELOPE_BYTES = 1024 * 1024

export interface EnvelopeCodecOptions {
  /** Largest encoded envelope accepted, in bytes (both directions). */
  maxBytes?: number
}

export interface EnvelopeCodec {
  readonly maxBytes: number
  encode(envelope: Envelope): Buffer
  /** Throws EnvelopeError (and only that) when `bytes` is not a valid envelope. */
  decode(bytes: Uint8Array): Envelope
}

// Records/structures are msgpackr extensions that need shared state between writer and reader: off, so
// any msgpack reader (other languages, the browser client) can read an envelope.
const packr = new Packr({ useRecords: false, moreTypes: false })
// Writers in other languages emit integers as uint64/int64 (Python's, Go's and Java's msgpack do for anything
// outside 32 bits); msgpackr's default reads those as BigInt. 'auto' gives a number for every value up to 2^53 and
// a BigInt only beyond, so an integer decodes to the same JavaScript value whichever msgpack encoding carried it,
// and the range checks below refuse what is not a safe integer.
// ('auto' is implemented by msgpackr 2.x but missing from its type declarations.)
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'auto' as unknown as 'bigint' })

/** Optional top-level fields; a msgpack nil in one of them means the same as leaving it out. */
const OPTIONAL_FIELDS = ['clientSessionId', 'topicAlias', 'status', 'deadline', 'retry', 'trace', 'actor', 'payloadRef'] as const

const KINDS: ReadonlySet<EnvelopeKind> = new Set(['command', 'result', 'event'])
const STATUSES: ReadonlySet<ResultStatus> = new Set(['ok', 'error', 'timeout'])

export function createEnvelopeCodec(options: EnvelopeCodecOptions = {}): EnvelopeCodec {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ENVELOPE_BYTES
  if (!Number.isInteger(maxBytes) || maxBytes < 64) {
    throw invalidOptions('EnvelopeCodec', [`maxBytes must be an integer >= 64, got ${String(options.maxBytes)}`])
  }
  return Object.freeze({
    maxBytes,
    encode: (envelope: Envelope) => encodeEnvelope(envelope, maxBytes),
    decode: (bytes: Uint8Array) => decodeEnvelope(bytes, maxBytes),
  })
}

/** The msgpack of one value, as the envelope writes it (a payload stored by reference is these bytes). */
export function packValue(value: unknown): Buffer {
  return packr.pack(value)
}

/** Reads what packValue wrote; throws what msgpackr throws on bytes that are not one msgpack document. */
export function unpackValue(bytes: Uint8Array): unknown {
  const values = unpackr.unpackMultiple(bytes as Buffer) as unknown[] | undefined
  if (values === undefined || values.length !== 1) throw new Error(`expected one msgpack document, found ${values?.length ?? 0}`)
  return values[0]
}

export function encodeEnvelope(envelope: Envelope, maxBytes = DEFAULT_MAX_ENVELOPE_BYTES): Buffer {
  const violations = validateEnvelope(envelope)
  if (violations.length > 0) {
    throw new EnvelopeError('WEIR_ERR_ENVELOPE_INVALID', new Uint8Array(), `cannot encode an invalid envelope: ${violations.join('; ')}`, {
      details: { violations },
    })
  }
  const wire: Record<string, unknown> = { v: ENVELOPE_SCHEMA_VERSION }
  for (const [key, value] of Object.entries(envelope)) {
    if (value !== undefined) wire[key] = value
  }
  wire.createdAt = wideInt(envelope.createdAt)
  if (envelope.deadline !== undefined) wire.deadline = wideInt(envelope.deadline)
  if (envelope.retry !== undefined) wire.retry = { ...envelope.retry, count: wideInt(envelope.retry.count) }
  if (envelope.payloadRef !== undefined) wire.payloadRef = { ...envelope.payloadRef, size: wideInt(envelope.payloadRef.size) }
  if (envelope.breadcrumbs.length > 0) wire.breadcrumbs = envelope.breadcrumbs.map((crumb) => ({ ...crumb, at: wideInt(crumb.at) }))
  const bytes = packr.pack(wire)
  if (bytes.byteLength > maxBytes) {
    throw new EnvelopeError(
      'WEIR_ERR_ENVELOPE_TOO_LARGE',
      new Uint8Array(),
      `envelope ${envelope.id} is ${bytes.byteLength} bytes, over the limit of ${maxBytes}`,
      { details: { size: bytes.byteLength, maxBytes, id: envelope.id } },
    )
  }
  return bytes
}

export function decodeEnvelope(bytes: Uint8Array, maxBytes = DEFAULT_MAX_ENVELOPE_BYTES): Envelope {
  const raw = bytes
  if (raw.byteLength === 0) throw new EnvelopeError('WEIR_ERR_ENVELOPE_DECODE', raw, 'empty record: not an envelope')
  if (raw.byteLength > maxBytes) {
    throw new EnvelopeError('WEIR_ERR_ENVELOPE_TOO_LARGE', raw, `record is ${raw.byteLength} bytes, over the limit of ${maxBytes}`, {
      details: { size: raw.byteLength, maxBytes },
    })
  }
  let decoded: unknown
  try {
    // unpackMultiple exposes trailing bytes, which a single valid document never has.
    const values = unpackr.unpackMultiple(raw as Buffer) as unknown[] | undefined
    if (values === undefined || values.length !== 1) {
      throw new Error(`expected one msgpack document, found ${values?.length ?? 0}`)
    }
    decoded = values[0]
    // 0xc1 is msgpack's never-used byte; msgpackr decodes it to a marker object instead of failing. The byte never
    // occurs in UTF-8, so a document without it (nearly every one) skips the walk.
    if (holdsNeverUsed(raw, decoded)) throw new Error('the never-used byte 0xc1 in place of a value')
  } catch (cause) {
    throw new EnvelopeError('WEIR_ERR_ENVELOPE_DECODE', raw, `not a msgpack document: ${messageOf(cause)}`, { cause })
  }
  if (!isPlainObject(decoded)) {
    throw new EnvelopeError('WEIR_ERR_ENVELOPE_INVALID', raw, `expected a msgpack map, got ${describe(decoded)}`, {
      details: { violations: ['not a map'] },
    })
  }
  const version = decoded.v
  if (version !== ENVELOPE_SCHEMA_VERSION) {
    if (typeof version === 'number' && Number.isInteger(version) && version > ENVELOPE_SCHEMA_VERSION) {
      throw new EnvelopeError('WEIR_ERR_ENVELOPE_VERSION', raw, `envelope schema version ${version} is newer than ${ENVELOPE_SCHEMA_VERSION}`, {
        details: { version, supported: ENVELOPE_SCHEMA_VERSION },
      })
    }
    throw new EnvelopeError('WEIR_ERR_ENVELOPE_INVALID', raw, `missing or invalid schema version: ${describe(version)}`, {
      details: { violations: ['v must be a supported schema version'] },
    })
  }
  const { v: _version, ...fields } = decoded
  for (const field of OPTIONAL_FIELDS) if (fields[field] === null) delete fields[field]
  const violations = validateEnvelope(fields)
  if (violations.length > 0) {
    throw new EnvelopeError('WEIR_ERR_ENVELOPE_INVALID', raw, `invalid envelope: ${violations.join('; ')}`, { details: { violations } })
  }
  return fields as unknown as Envelope
}

/**
 * msgpackr writes a number beyond 32 bits as a float64; as a BigInt it becomes an int64, which readers that
 * decode into integer types (Java's msgpack-core, Go's typed decoders) accept where they refuse a float.
 */
function wideInt(value: number): number | bigint {
  return value > 0xffffffff ? BigInt(value) : value
}

/** Every way `value` fails to be an envelope; empty when it is one. */
export function validateEnvelope(value: unknown): string[] {
  if (!isPlainObject(value)) return [`expected an object, got ${describe(value)}`]
  const v = value
  const problems: string[] = []
  const need = (ok: boolean, problem: string) => {
    if (!ok) problems.push(problem)
  }
  need(isNonEmptyString(v.id), 'id must be a non-empty string')
  need(isNonEmptyString(v.requestId), 'requestId must be a non-empty string')
  need(v.clientSessionId === undefined || isNonEmptyString(v.clientSessionId), 'clientSessionId must be a non-empty string when present')
  need(KINDS.has(v.kind as EnvelopeKind), `kind must be one of ${[...KINDS].join(', ')}`)
  need(v.topicAlias === undefined || isNonEmptyString(v.topicAlias), 'topicAlias must be a non-empty string when present')
  need(typeof v.contextPath === 'string', 'contextPath must be a string')
  need(isNonEmptyString(v.alias), 'alias must be a non-empty string')
  need('payload' in v, 'payload is missing')
  need(v.status === undefined || (STATUSES.has(v.status as ResultStatus) && v.kind === 'result'), 'status must be ok, error or timeout, on results only')
  need(isTimestamp(v.createdAt), `createdAt must be an integer from 0 to ${MAX_SAFE} (ms since the epoch), got ${describeNumber(v.createdAt)}`)
  need(
    v.deadline === undefined || isTimestamp(v.deadline),
    `deadline must be an integer from 0 to ${MAX_SAFE} (ms since the epoch) when present, got ${describeNumber(v.deadline)}`,
  )
  need(Array.isArray(v.breadcrumbs) && v.breadcrumbs.every(isBreadcrumb), 'breadcrumbs must be an array of {id, kind, contextPath, alias, at}')
  need(
    v.retry === undefined || (isPlainObject(v.retry) && typeof v.retry.outOfOrder === 'boolean' && isTimestamp(v.retry.count)),
    `retry must be {outOfOrder: boolean, count: integer from 0 to ${MAX_SAFE}} when present`,
  )
  need(
    v.trace === undefined ||
      (isPlainObject(v.trace) &&
        typeof v.trace.traceparent === 'string' &&
        isTraceparent(v.trace.traceparent) &&
        (v.trace.tracestate === undefined || typeof v.trace.tracestate === 'string')),
    'trace must be {traceparent: W3C traceparent, tracestate?: string} when present',
  )
  need(
    v.actor === undefined ||
      (isPlainObject(v.actor) && isNonEmptyString(v.actor.sub) && Array.isArray(v.actor.roles) && v.actor.roles.every(isNonEmptyString)),
    'actor must be {sub: non-empty string, roles: array of non-empty strings} when present',
  )
  need(
    v.payloadRef === undefined || (isBlobRef(v.payloadRef) && v.payload === null),
    'payloadRef must be {store: non-empty string, key: non-empty string, size: integer from 0 to 2^53-1, sha256: 64 lower-case hex digits, contentType: non-empty string} when present, with payload nil',
  )
  return problems
}

const SHA256 = /^[0-9a-f]{64}$/

function isBlobRef(value: unknown): boolean {
  return (
    isPlainObject(value) &&
    isNonEmptyString(value.store) &&
    isNonEmptyString(value.key) &&
    isTimestamp(value.size) &&
    typeof value.sha256 === 'string' &&
    SHA256.test(value.sha256) &&
    isNonEmptyString(value.contentType)
  )
}

function isBreadcrumb(value: unknown): value is Breadcrumb {
  return (
    isPlainObject(value) &&
    isNonEmptyString(value.id) &&
    KINDS.has(value.kind as EnvelopeKind) &&
    typeof value.contextPath === 'string' &&
    isNonEmptyString(value.alias) &&
    isTimestamp(value.at)
  )
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER

/** A safe non-negative integer, whichever msgpack type carried it (fixint, uint8-64, int8-64, or an integral float). */
function isTimestamp(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function describeNumber(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint') return String(value)
  return describe(value)
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (value instanceof Uint8Array) return 'binary data'
  return typeof value
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
