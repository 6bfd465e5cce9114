// Strict parsing of client frames (docs/protocol.md, "Frames"): one parser per frame type, from a table keyed
// by the frame types of frame-types.ts (a type without a parser does not compile); every violation is listed.
import { CLIENT_FRAME_TYPES, isClientFrameType } from './frame-types.ts'
import type { ClientFrameType } from './frame-types.ts'
import { decodeDocument, isPlainObject } from './protocol.ts'
import type { ClientFrame, ClientFrames, DecodeResult, FrameOffset } from './protocol.ts'

export const MAX_REQUEST_ID_LENGTH = 128
export const MAX_PATH_LENGTH = 512
export const MAX_TTL_MS = 2 ** 31 - 1

/** Strict parsing of a client frame: every violation is listed, unknown fields are ignored. */
export function parseClientFrame(data: Uint8Array | string, isBinary: boolean, maxBytes: number): DecodeResult<ClientFrame> {
  const decoded = decodeDocument(data, isBinary, maxBytes)
  if (!decoded.ok) return decoded
  const v = decoded.frame
  const violations: string[] = []
  const requestId = typeof v.requestId === 'string' && v.requestId.length > 0 && v.requestId.length <= MAX_REQUEST_ID_LENGTH ? v.requestId : undefined
  const type = isClientFrameType(v.type) ? v.type : undefined
  const frame = type === undefined ? undefined : clientFrameParsers[type](v, violations, requestId)
  if (type === undefined) violations.push(`type must be one of ${CLIENT_FRAME_TYPES.join(', ')}; got ${JSON.stringify(v.type) ?? 'nothing'}`)
  if (frame !== undefined && violations.length === 0) return { ok: true, frame }
  return {
    ok: false,
    code: 'WEIR_ERR_FRAME_INVALID',
    message: `invalid ${type === undefined ? '' : `${type} `}frame: ${violations.join('; ')}`,
    violations,
    ...(requestId === undefined ? {} : { requestId }),
  }
}

/** Reads one frame type's fields: the frame, or undefined with the violations pushed. */
type FrameParser<K extends ClientFrameType> = (v: Record<string, unknown>, violations: string[], requestId: string | undefined) => ClientFrames[K] | undefined

const clientFrameParsers: { readonly [K in ClientFrameType]: FrameParser<K> } = {
  command(v, violations, requestId) {
    if (requestId === undefined) violations.push(`requestId must be a string of 1 to ${MAX_REQUEST_ID_LENGTH} characters`)
    if (!(typeof v.path === 'string' && v.path.length > 0 && v.path.length <= MAX_PATH_LENGTH)) {
      violations.push(`path must be a string of 1 to ${MAX_PATH_LENGTH} characters (topicAlias/contextPath/commandAlias)`)
    }
    if (!('payload' in v) || v.payload === undefined) violations.push('payload is missing')
    if (v.ttlMs !== undefined && !(Number.isInteger(v.ttlMs) && (v.ttlMs as number) > 0 && (v.ttlMs as number) <= MAX_TTL_MS)) {
      violations.push(`ttlMs must be a positive integer of at most ${MAX_TTL_MS}`)
    }
    if (v.traceparent !== undefined && !(typeof v.traceparent === 'string' && v.traceparent.length <= 128)) {
      violations.push('traceparent must be a W3C traceparent string')
    }
    if (violations.length > 0) return undefined
    return {
      type: 'command',
      path: v.path as string,
      requestId: requestId as string,
      payload: v.payload,
      ...(v.ttlMs === undefined ? {} : { ttlMs: v.ttlMs as number }),
      ...(v.traceparent === undefined ? {} : { traceparent: v.traceparent as string }),
      ...(v.payloadRef === undefined || v.payloadRef === null ? {} : { payloadRef: v.payloadRef }),
    }
  },
  subscribe(v, violations) {
    parseTopic(v, violations)
    const offsets = v.offsets === undefined ? undefined : parseOffsets(v.offsets, violations)
    if (violations.length > 0) return undefined
    return { type: 'subscribe', topic: v.topic as string, ...(offsets === undefined ? {} : { offsets }) }
  },
  unsubscribe(v, violations) {
    parseTopic(v, violations)
    return violations.length > 0 ? undefined : { type: 'unsubscribe', topic: v.topic as string }
  },
  resume(v, violations) {
    const offsets = parseOffsets(v.offsets, violations)
    return offsets === undefined ? undefined : { type: 'resume', offsets }
  },
  auth(v, violations) {
    if (!(typeof v.token === 'string' && v.token.length > 0 && v.token.length <= 16_384)) violations.push('token must be a non-empty string')
    return violations.length > 0 ? undefined : { type: 'auth', token: v.token as string }
  },
}

function parseTopic(v: Record<string, unknown>, violations: string[]): void {
  if (!(typeof v.topic === 'string' && v.topic.length > 0 && v.topic.length <= MAX_PATH_LENGTH)) violations.push('topic must name a topic alias')
}

const MAX_OFFSETS = 10_000

function parseOffsets(value: unknown, violations: string[]): FrameOffset[] | undefined {
  if (!Array.isArray(value)) {
    violations.push('offsets must be an array of {topic, partition, offset}')
    return undefined
  }
  if (value.length > MAX_OFFSETS) {
    violations.push(`offsets may list at most ${MAX_OFFSETS} partitions`)
    return undefined
  }
  const result: FrameOffset[] = []
  value.forEach((entry, i) => {
    const offset = isPlainObject(entry) ? normalizeOffset(entry.offset) : undefined
    if (
      !isPlainObject(entry) ||
      typeof entry.topic !== 'string' ||
      entry.topic.length === 0 ||
      !(Number.isInteger(entry.partition) && (entry.partition as number) >= 0) ||
      offset === undefined
    ) {
      violations.push(`offsets[${i}] must be {topic: string, partition: integer >= 0, offset: decimal string or integer >= 0}`)
      return
    }
    result.push({ topic: entry.topic, partition: entry.partition as number, offset })
  })
  return result
}

function normalizeOffset(value: unknown): string | undefined {
  if (typeof value === 'string' && /^(0|[1-9][0-9]{0,18})$/.test(value)) return value
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value)
  if (typeof value === 'bigint' && value >= 0n) return value.toString()
  return undefined
}
