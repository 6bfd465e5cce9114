// Server-side frame building: Kafka records to result/event frames, command envelope ids and keys.
import { createHash } from 'node:crypto'

import type { BlobRef, Envelope } from '../envelope/envelope.ts'
import type { ConsumedRecord } from '../kafka/index.ts'
import type { EventFrame, ResultFrame, TimeoutFrame } from './protocol.ts'

/** The download link of a referenced blob (the gateway's blob routes), when the gateway has a blob store. */
export type BlobLinker = ((ref: BlobRef) => string) | undefined

function delivered(record: ConsumedRecord, envelope: Envelope, link?: BlobLinker) {
  const ref = envelope.payloadRef
  return {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset.toString(),
    id: envelope.id,
    requestId: envelope.requestId,
    ...(envelope.topicAlias === undefined ? {} : { topicAlias: envelope.topicAlias }),
    contextPath: envelope.contextPath,
    alias: envelope.alias,
    payload: envelope.payload,
    createdAt: envelope.createdAt,
    ...(envelope.trace === undefined ? {} : { traceparent: envelope.trace.traceparent }),
    ...(ref === undefined || link === undefined ? {} : { payloadRef: { size: ref.size, sha256: ref.sha256, contentType: ref.contentType, url: link(ref) } }),
  }
}

export function resultFrame(record: ConsumedRecord, envelope: Envelope, link?: BlobLinker): ResultFrame | TimeoutFrame {
  if (envelope.status === 'timeout') return { type: 'timeout', status: 'timeout', ...delivered(record, envelope, link) }
  return { type: 'result', status: envelope.status === 'error' ? 'error' : 'ok', ...delivered(record, envelope, link) }
}

/**
 * Who an event frame is for: `own` (the sockets of the session whose command caused the event: everything),
 * `internal` (anyone else on an internal stream: the trace context but not the requestId), `public` (anyone
 * else: neither).
 */
export type EventAudience = 'own' | 'internal' | 'public'

export function eventFrame(record: ConsumedRecord, envelope: Envelope, topicAlias: string, audience: EventAudience, link?: BlobLinker): EventFrame {
  const { requestId, traceparent, ...rest } = delivered(record, envelope, link)
  return {
    type: 'event',
    ...rest,
    topicAlias,
    ...(audience === 'own' ? { requestId } : {}),
    ...(audience === 'public' || traceparent === undefined ? {} : { traceparent }),
  }
}

/**
 * The envelope id of a command: a UUIDv8 derived from (session, requestId). A client that re-sends a
 * command it got no ack for (after a reconnect) produces the same id, and the worker's consumed-id store
 * drops the second copy: re-sending is safe.
 */
export function commandId(sessionId: string, requestId: string): string {
  const h = createHash('sha256').update(sessionId).update('\u0000').update(requestId).digest('hex')
  const variant = ((parseInt(h[16] as string, 16) & 0x3) | 0x8).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/** The Kafka key of a command: the spec's keyField value when it is a string or number, else the requestId. */
export function commandKey(payload: unknown, keyField: string | undefined, requestId: string): string {
  if (keyField !== undefined && typeof payload === 'object' && payload !== null) {
    const value = (payload as Record<string, unknown>)[keyField]
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') return String(value)
  }
  return requestId
}
