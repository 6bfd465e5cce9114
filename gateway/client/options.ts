// What a user of the client SDK writes and gets: the options of connect() and the client it returns.
import type { WeirError } from '../../core/errors.ts'
import type { AckFrame, Encoding, EventFrame, FrameOffset, GapFrame, ResultFrame, TimeoutFrame } from '../protocol.ts'

export type TokenSource = string | (() => string | Promise<string>)

export interface ReconnectOptions {
  /** First delay after a disconnect (default 100 ms); doubles per failed attempt. */
  initialDelayMs?: number
  /** Longest delay (default 5 s). */
  maxDelayMs?: number
}

export interface GatewayClientOptions {
  /** ws(s)://host/ws, or a function (called per connection attempt, e.g. to rotate over instances). */
  url: string | (() => string)
  /** A token, or a function returning a fresh one (called per connection and before expiry). */
  token: TokenSource
  encoding?: Encoding
  /** Keeps the same session across page reloads: store `client.sessionNonce` and pass it back. */
  sessionNonce?: string
  /** Offsets stored from `client.offsets()` before a reload: missed results and events are replayed. */
  offsets?: readonly FrameOffset[]
  /** false disables reconnecting. */
  reconnect?: ReconnectOptions | false
  /** Waited beyond a command's deadline for its outcome before rejecting with WEIR_ERR_TIMEOUT (default 10 s). */
  outcomeGraceMs?: number
  /** Command payloads whose msgpack is larger are uploaded over HTTP first (default 48 KiB; docs/protocol.md, "Large payloads"). */
  uploadThresholdBytes?: number
  /** TTL assumed until the ack tells the deadline (default 30 s). */
  defaultTtlMs?: number
  /** Refresh the token this long before it expires (default 30 s), when `token` is a function. */
  refreshBeforeExpiryMs?: number
  /**
   * Ask the gateway to encrypt this client's results (ECDH P-256 + AES-256-GCM, docs/protocol.md): the private
   * key never leaves this client (WebCrypto, not extractable). Default false.
   */
  encryptResults?: boolean
  /** How long connect() waits for the first connection (default 10 s). */
  connectTimeoutMs?: number
  /** The WebSocket constructor (default: the global one). */
  WebSocket?: typeof WebSocket
  /** Records that cannot be replayed any more (retention): the client missed them. */
  onGap?: (gap: GapFrame) => void
  /** Error frames that answer no command (bad frame, rate limit, unknown topic). */
  onError?: (error: WeirError) => void
  /** Results for requestIds this client did not send (e.g. sent before a page reload). */
  onResult?: (result: ResultFrame | TimeoutFrame) => void
  onStateChange?: (state: ClientState) => void
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface SendOptions {
  ttlMs?: number
  /** Default: a random UUID. Re-using one re-sends the same command (the worker runs it once). */
  requestId?: string
  /** W3C traceparent of the caller's span. */
  traceparent?: string
  /**
   * Called once, when the gateway says the command is on Kafka (its topic, partition, offset and deadline):
   * from then on it runs even if this client goes away. Not called for a command refused with an error frame.
   */
  onAck?: (ack: AckFrame) => void
}

export interface SubscribeOptions {
  /** The gateway refused or ended the subscription (WEIR_ERR_FORBIDDEN, WEIR_ERR_UNKNOWN_TOPIC). */
  onError?: (error: WeirError) => void
}

export interface GatewayClient {
  readonly state: ClientState
  readonly sessionId: string | undefined
  readonly sessionNonce: string | undefined
  /**
   * Sends a command; resolves with its ok result. Rejects with the error frame's code (unknown command,
   * schema violation, forbidden, ...), WEIR_ERR_DEADLINE_EXCEEDED on a timeout result (the frame is in
   * `details.result`), the result's `payload.code` (or WEIR_ERR_PROCESSING) on an error result, or
   * WEIR_ERR_TIMEOUT when no outcome arrives by the deadline plus `outcomeGraceMs`.
   */
  send(path: string, payload: unknown, options?: SendOptions): Promise<ResultFrame>
  /**
   * Events of a topic alias; returns the function that unsubscribes this handler. When the gateway refuses
   * the subscription or ends it (WEIR_ERR_FORBIDDEN: the token may not read the alias's events;
   * WEIR_ERR_UNKNOWN_TOPIC), every handler of the alias is dropped (not subscribed again on reconnect) and
   * `options.onError` gets the error (the client's `onError` when no handler of the alias gave one).
   */
  subscribe(topicAlias: string, handler: (event: EventFrame) => void, options?: SubscribeOptions): () => void
  /** Sends a fresh token over the open connection (from `token` when not given). */
  refreshToken(token?: string): Promise<void>
  /** Next offset wanted per partition: store it to resume after a reload (with `sessionNonce`). */
  offsets(): FrameOffset[]
  /**
   * Drops the current connection and connects again at once (to whatever `url` gives now), resuming from
   * `offsets()`: what arrives meanwhile is replayed, nothing twice. Commands in flight stay pending.
   */
  reconnect(): void
  close(): void
}
