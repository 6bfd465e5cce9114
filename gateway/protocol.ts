// The gateway's socket protocol (docs/protocol.md): frame shapes, strict parsing, encoding.
// One shape per frame type, carried either as JSON in a text frame or as msgpack in a binary frame.
// Browser-safe: the client SDK imports this file too.
import { Packr, Unpackr } from 'msgpackr'

import { holdsNeverUsed } from '../envelope/never-used.ts'
import type { WireErrorCode } from './errors.ts'
import { isServerFrameType } from './frame-types.ts'
import type { ClientFrameType, ServerFrameType } from './frame-types.ts'

export { CLIENT_FRAME_TYPES, SERVER_FRAME_TYPES } from './frame-types.ts'
export type { ClientFrameType, ServerFrameType } from './frame-types.ts'

export const PROTOCOL_VERSION = 1
/** The WebSocket subprotocol the gateway speaks (echoed in the upgrade response). */
export const SUBPROTOCOL = 'weir.v1'
/** Subprotocol prefix that carries a bearer token from browsers, which cannot set headers on a WebSocket. */
export const BEARER_SUBPROTOCOL_PREFIX = 'weir.bearer.'

export type Encoding = 'json' | 'msgpack'

/** Result encryption: ECDH on P-256 (client key x gateway's per-socket ephemeral key), HKDF-SHA-256, AES-256-GCM. */
export const SEALING_ALG = 'ECDH-ES+A256GCM'
/** HKDF info; the salt is the UTF-8 session id. */
export const SEALING_INFO = 'weir.v1 result sealing'

/**
 * A Kafka position: `offset` is a decimal string (Kafka offsets are 64-bit). In a `resume` or `subscribe`
 * it is the next offset the client wants (its last received offset + 1); in positions it is the next
 * offset the gateway will deliver.
 */
export interface FrameOffset {
  readonly topic: string
  readonly partition: number
  readonly offset: string
}

// ---- client -> server ----

export interface CommandFrame {
  readonly type: 'command'
  /** `topicAlias/contextPath/commandAlias` (the context path may hold several segments or none). */
  readonly path: string
  /** Chosen by the client, unique per command; a re-sent command with the same requestId is the same command. */
  readonly requestId: string
  readonly payload: unknown
  /** Time to live in ms; clamped by the catalog's maxTtlMs. */
  readonly ttlMs?: number
  /** W3C traceparent of the client's span: the command's trace continues it. */
  readonly traceparent?: string
  /** The reference POST /blobs returned, for a payload sent by upload (then `payload` is null). */
  readonly payloadRef?: unknown
}

export interface SubscribeFrame {
  readonly type: 'subscribe'
  /** Topic alias whose events the client wants. */
  readonly topic: string
  /** Resume this subscription from these positions of the alias's events topic (else from now). */
  readonly offsets?: readonly FrameOffset[]
}

export interface UnsubscribeFrame {
  readonly type: 'unsubscribe'
  readonly topic: string
}

export interface ResumeFrame {
  readonly type: 'resume'
  /** Next offsets per result topic partition (results), and per events topic partition (applied by later subscribes). */
  readonly offsets: readonly FrameOffset[]
}

export interface AuthFrame {
  readonly type: 'auth'
  readonly token: string
}

/** Each client frame type's shape: a type in CLIENT_FRAME_TYPES without an entry here does not compile. */
export interface ClientFrames {
  readonly command: CommandFrame
  readonly subscribe: SubscribeFrame
  readonly unsubscribe: UnsubscribeFrame
  readonly resume: ResumeFrame
  readonly auth: AuthFrame
}

export type ClientFrame = ClientFrames[ClientFrameType]

// ---- server -> client ----

export interface WelcomeFrame {
  readonly type: 'welcome'
  readonly protocol: number
  readonly sessionId: string
  /** Send it back (`session` upgrade parameter) on reconnect to get the same session. */
  readonly sessionNonce: string
  readonly subject: string
  /** Token expiry, ms since the epoch (refresh with an `auth` frame before it). */
  readonly expiresAt?: number
  readonly limits: { readonly maxFrameBytes: number; readonly ratePerSecond: number; readonly burst: number }
  /** Present when the client registered a public key (`key` upgrade parameter): results are sealed. */
  readonly sealing?: Sealing
}

export interface AckFrame {
  readonly type: 'ack'
  readonly requestId: string
  /** Where the command was written. */
  readonly topic: string
  readonly partition: number
  readonly offset: string
  /** Absolute deadline, ms since the epoch. */
  readonly deadline?: number
}

interface DeliveredFields {
  /** Kafka coordinates of the record this frame carries. */
  readonly topic: string
  readonly partition: number
  readonly offset: string
  /** Envelope fields. */
  readonly id: string
  readonly requestId: string
  readonly topicAlias?: string
  readonly contextPath: string
  readonly alias: string
  readonly payload: unknown
  readonly createdAt: number
  readonly traceparent?: string
  /** A payload by reference (`payload` is null): the blob's reference and a short-lived download link (a path on the gateway). */
  readonly payloadRef?: { readonly size: number; readonly sha256: string; readonly contentType: string; readonly url: string }
}

export interface ResultFrame extends DeliveredFields {
  readonly type: 'result'
  readonly status: 'ok' | 'error'
  /** Set when the socket registered a key: `payload` is null and this holds it, encrypted. */
  readonly sealed?: SealedPayload
}

/** A result whose outcome is the deadline (status timeout). */
export interface TimeoutFrame extends DeliveredFields {
  readonly type: 'timeout'
  readonly status: 'timeout'
  readonly sealed?: SealedPayload
}

/**
 * An event. `requestId` only goes to the sockets of the session whose command caused it; `traceparent` to
 * those and, on an internal stream (the catalog's `eventStreams`), to every subscriber.
 */
export interface EventFrame extends Omit<DeliveredFields, 'requestId'> {
  readonly type: 'event'
  readonly requestId?: string
}

/** How results to this socket are sealed (docs/protocol.md, "Result encryption"). */
export interface Sealing {
  readonly alg: typeof SEALING_ALG
  /** The gateway's ephemeral P-256 public key for this socket, uncompressed (65 bytes), base64url. */
  readonly epk: string
}

/** A result payload encrypted for the socket's key: AES-256-GCM of the msgpack-encoded payload. */
export interface SealedPayload {
  /** 12-byte IV, base64url. */
  readonly iv: string
  /** Ciphertext followed by the 16-byte tag, base64url. */
  readonly ct: string
}

export interface ErrorFrame {
  readonly type: 'error'
  readonly code: WireErrorCode
  readonly message: string
  /** Set when the error answers a command. */
  readonly requestId?: string
  readonly details?: Readonly<Record<string, unknown>>
}

/** Records in [from, to) of this partition are no longer in Kafka (retention): they cannot be replayed. */
export interface GapFrame {
  readonly type: 'gap'
  readonly topic: string
  readonly partition: number
  readonly from: string
  readonly to: string
}

export interface SubscribedFrame {
  readonly type: 'subscribed'
  readonly topic: string
  /** The Kafka topic of the alias's events. */
  readonly eventsTopic: string
  /** From here on everything is delivered live (replay, if any, is complete). */
  readonly positions: readonly FrameOffset[]
  readonly replayed: number
}

export interface UnsubscribedFrame {
  readonly type: 'unsubscribed'
  readonly topic: string
}

export interface ResumedFrame {
  readonly type: 'resumed'
  /** Result topic positions from which results are live (replay, if any, is complete). */
  readonly positions: readonly FrameOffset[]
  readonly replayed: number
}

/**
 * Sent periodically to sockets whose results are live: every result partition has been delivered up to these
 * positions (nothing for this session below them is missing), so a later resume starts here.
 */
export interface CheckpointFrame {
  readonly type: 'checkpoint'
  readonly positions: readonly FrameOffset[]
}

export interface AuthenticatedFrame {
  readonly type: 'authenticated'
  readonly subject: string
  readonly expiresAt?: number
}

/** Each server frame type's shape: a type in SERVER_FRAME_TYPES without an entry here does not compile. */
export interface ServerFrames {
  readonly welcome: WelcomeFrame
  readonly ack: AckFrame
  readonly result: ResultFrame
  readonly timeout: TimeoutFrame
  readonly event: EventFrame
  readonly error: ErrorFrame
  readonly gap: GapFrame
  readonly subscribed: SubscribedFrame
  readonly unsubscribed: UnsubscribedFrame
  readonly resumed: ResumedFrame
  readonly checkpoint: CheckpointFrame
  readonly authenticated: AuthenticatedFrame
}

export type ServerFrame = ServerFrames[ServerFrameType]

// Close codes the gateway uses (4000-4999 are for applications).
export const closeCodes = {
  /** The gateway is shutting down: reconnect (to another instance) and resume. */
  goingAway: 1001,
  /** The token expired and was not refreshed. */
  tokenExpired: 4001,
  /** A replay failed (Kafka error): reconnect and resume again. */
  replayFailed: 1011,
} as const

// ---- encoding ----

// Plain msgpack (no records/structures extensions) so any msgpack library reads the frames.
const packr = new Packr({ useRecords: false, moreTypes: false })
// Integers come as uint64/int64 from other languages' writers (Go's int64 fields always, Python's and Java's beyond
// 32 bits); msgpackr's default reads those as BigInt, which an integer field (ttlMs, partition) would refuse. 'auto'
// gives a number up to 2^53 whatever encoding carried it (as envelope/codec.ts does; missing from msgpackr's types).
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'auto' as unknown as 'bigint' })
const utf8 = new TextDecoder('utf-8', { fatal: true })

export function encodeFrame(frame: ServerFrame | ClientFrame, encoding: Encoding): string | Uint8Array {
  return encoding === 'json' ? JSON.stringify(frame) : packr.pack(frame)
}

export type DecodeResult<T> = { ok: true; frame: T } | { ok: false; code: WireErrorCode; message: string; violations?: string[]; requestId?: string }

/** Decodes bytes (binary: msgpack, text: JSON) into one plain object, or says why it cannot. */
export function decodeDocument(data: Uint8Array | string, isBinary: boolean, maxBytes: number): DecodeResult<Record<string, unknown>> {
  const size = typeof data === 'string' ? data.length : data.byteLength
  if (size > maxBytes) return { ok: false, code: 'WEIR_ERR_FRAME_TOO_LARGE', message: `frame is ${size} bytes, over the limit of ${maxBytes}` }
  let value: unknown
  try {
    if (isBinary) {
      const values = unpackr.unpackMultiple(data as Buffer) as unknown[] | undefined
      if (values === undefined || values.length !== 1) throw new Error(`expected one msgpack document, found ${values?.length ?? 0}`)
      value = values[0]
      if (holdsNeverUsed(data as Uint8Array, value)) throw new Error('the never-used byte 0xc1 in place of a value')
    } else {
      value = JSON.parse(typeof data === 'string' ? data : utf8.decode(data))
    }
  } catch (cause) {
    const what = isBinary ? 'msgpack' : 'JSON'
    return { ok: false, code: 'WEIR_ERR_FRAME_MALFORMED', message: `not a ${what} document: ${(cause as Error).message}` }
  }
  if (!isPlainObject(value)) return { ok: false, code: 'WEIR_ERR_FRAME_MALFORMED', message: `a frame must be an object, got ${describe(value)}` }
  return { ok: true, frame: value }
}

/** Client side: decodes a server frame (the server is trusted; only the type is checked). */
export function parseServerFrame(data: Uint8Array | string, isBinary: boolean): ServerFrame | undefined {
  const decoded = decodeDocument(data, isBinary, Number.MAX_SAFE_INTEGER)
  if (!decoded.ok || !isServerFrameType(decoded.frame.type)) return undefined
  return decoded.frame as unknown as ServerFrame
}

/** Additional authenticated data of a sealed payload: it cannot be moved to another frame. */
export function sealingAad(frame: { topic: string; partition: number; offset: string; requestId: string }): Uint8Array {
  return new TextEncoder().encode(`${frame.topic}\u0000${frame.partition}\u0000${frame.offset}\u0000${frame.requestId}`)
}

/** msgpack of any value (sealed payloads are msgpack whatever the frame encoding). */
export function packValue(value: unknown): Uint8Array {
  return packr.pack(value)
}

export function unpackValue(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes as Buffer)
}

export function toBase64Url(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export function fromBase64Url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value
}
