// The gateway's client SDK, for browsers and Node (global WebSocket; Node >= 22). No node: imports.
//
//   const client = await connect({ url: 'wss://host/ws', token: () => auth.currentToken() })
//   const result = await client.send('orders/sales/place', { orderId: 'o-1', qty: 2 }, { ttlMs: 5000 })
//   const stop = client.subscribe('orders', (event) => render(event.payload))
//
// It reconnects by itself (exponential backoff with jitter) and resumes: it keeps, per topic partition, the
// next offset it wants, sends them on every reconnect, and drops any frame below them (no duplicates even
// when a frame arrives twice). A command not acked before a disconnect is sent again with the same
// requestId, which the gateway turns into the same envelope id, so the worker runs it once.
import type { WeirError } from '../core/errors.ts'
import { DEFAULT_UPLOAD_THRESHOLD, httpOrigin, preparePayload, resolvePayload } from './client-payloads.ts'
import { gatewayError, isWireErrorCode } from './errors.ts'
import type { WireErrorCode } from './errors.ts'
import {
  BEARER_SUBPROTOCOL_PREFIX,
  SEALING_INFO,
  SUBPROTOCOL,
  encodeFrame,
  fromBase64Url,
  parseServerFrame,
  partitionKey,
  sealingAad,
  toBase64Url,
  unpackValue,
} from './protocol.ts'
import type { AckFrame, ClientFrame, Encoding, EventFrame, FrameOffset, GapFrame, ResultFrame, Sealing, ServerFrame, TimeoutFrame } from './protocol.ts'

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

interface Pending {
  readonly requestId: string
  readonly frame: ClientFrame
  readonly resolve: (result: ResultFrame) => void
  readonly reject: (error: WeirError) => void
  readonly onAck: ((ack: AckFrame) => void) | undefined
  acked: boolean
  timer: ReturnType<typeof setTimeout> | undefined
}

/** Error codes with `details.topic` that refuse or end a subscription. */
const SUBSCRIPTION_REFUSED: ReadonlySet<string> = new Set(['WEIR_ERR_FORBIDDEN', 'WEIR_ERR_UNKNOWN_TOPIC'])

/** Error codes after which a command is sent again on the next connection instead of failing. */
const RESEND_CODES: ReadonlySet<string> = new Set(['WEIR_ERR_CLOSED'])

export async function connect(options: GatewayClientOptions): Promise<GatewayClient> {
  const keys = options.encryptResults === true ? await createSealingKeys() : undefined
  const client = createClient(options, keys)
  await client.opened
  return client.api
}

interface SealingKeys {
  readonly privateKey: CryptoKey
  /** Uncompressed P-256 point, base64url: the `key` upgrade parameter. */
  readonly publicKey: string
}

async function createSealingKeys(): Promise<SealingKeys> {
  const pair = (await globalThis.crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits'])) as CryptoKeyPair
  const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey('raw', pair.publicKey))
  return { privateKey: pair.privateKey, publicKey: toBase64Url(raw) }
}

/** The AES-GCM key of one connection: ECDH(client private, gateway ephemeral public) -> HKDF-SHA-256. */
async function deriveSealingKey(keys: SealingKeys, sealing: Sealing, sessionId: string): Promise<CryptoKey> {
  const subtle = globalThis.crypto.subtle
  const gatewayKey = await subtle.importKey('raw', fromBase64Url(sealing.epk) as Uint8Array<ArrayBuffer>, { name: 'ECDH', namedCurve: 'P-256' }, false, [])
  const shared = await subtle.deriveBits({ name: 'ECDH', public: gatewayKey }, keys.privateKey, 256)
  const hkdf = await subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey'])
  const utf8 = new TextEncoder()
  return subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: utf8.encode(sessionId), info: utf8.encode(SEALING_INFO) },
    hkdf,
    { name: 'AES-GCM', length: 256 },
    false,
    ['decrypt'],
  )
}

async function unseal<F extends ResultFrame | TimeoutFrame>(frame: F, key: CryptoKey | undefined): Promise<F> {
  if (frame.sealed === undefined) return frame
  if (key === undefined) throw gatewayError('WEIR_ERR_DECRYPT', 'a sealed result arrived but this connection has no key')
  try {
    const plain = await globalThis.crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: fromBase64Url(frame.sealed.iv) as Uint8Array<ArrayBuffer>, additionalData: sealingAad(frame) as Uint8Array<ArrayBuffer> },
      key,
      fromBase64Url(frame.sealed.ct) as Uint8Array<ArrayBuffer>,
    )
    const { sealed: _sealed, ...rest } = frame
    return { ...rest, payload: unpackValue(new Uint8Array(plain)) } as F
  } catch (cause) {
    throw gatewayError('WEIR_ERR_DECRYPT', `result ${frame.requestId} could not be decrypted`, { cause })
  }
}

/** One WebSocket connection: frames are handled in arrival order, with this connection's sealing key. */
interface Connection {
  readonly ws: WebSocket
  key: Promise<CryptoKey> | undefined
}

function createClient(options: GatewayClientOptions, keys: SealingKeys | undefined) {
  const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket
  const encoding: Encoding = options.encoding ?? 'json'
  const reconnect = options.reconnect === false ? undefined : { initialDelayMs: 100, maxDelayMs: 5000, ...options.reconnect }
  const outcomeGraceMs = options.outcomeGraceMs ?? 10_000
  const defaultTtlMs = options.defaultTtlMs ?? 30_000
  const refreshBeforeExpiryMs = options.refreshBeforeExpiryMs ?? 30_000

  const cursors = new Map<string, { topic: string; partition: number; offset: bigint }>()
  for (const o of options.offsets ?? []) advance(o.topic, o.partition, BigInt(o.offset))
  const pending = new Map<string, Pending>()
  /** Per topic alias: its event handlers, each with the subscription's onError. */
  const handlers = new Map<string, Map<(event: EventFrame) => void, ((error: WeirError) => void) | undefined>>()
  const eventsTopics = new Map<string, string>()
  let sessionId: string | undefined
  let sessionNonce = options.sessionNonce
  let state: ClientState = 'connecting'
  let socket: WebSocket | undefined
  let welcomed = false
  let attempt = 0
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined
  let refreshTimer: ReturnType<typeof setTimeout> | undefined
  let openedResolve: () => void = () => {}
  let openedReject: (error: WeirError) => void = () => {}
  let firstOpen = true
  let inbox: Promise<void> = Promise.resolve()
  const opened = new Promise<void>((resolve, reject) => {
    openedResolve = resolve
    openedReject = reject
  })
  const connectTimer = setTimeout(() => {
    if (!firstOpen) return
    openedReject(gatewayError('WEIR_ERR_TIMEOUT', `no connection to the gateway within ${options.connectTimeoutMs ?? 10_000} ms`))
    api.close()
  }, options.connectTimeoutMs ?? 10_000)

  function setState(next: ClientState): void {
    if (state === next) return
    state = next
    notify('onStateChange', options.onStateChange, next)
  }

  /** Runs an application callback; what it throws goes to onError, never into the client's own bookkeeping. */
  function notify<A extends unknown[]>(name: string, callback: ((...args: A) => void) | undefined, ...args: A): void {
    if (callback === undefined) return
    try {
      callback(...args)
    } catch (cause) {
      tellError(gatewayError('WEIR_ERR_CALLBACK', `the ${name} callback threw: ${cause instanceof Error ? cause.message : String(cause)}`, { cause }))
    }
  }

  function tellError(error: WeirError): void {
    try {
      options.onError?.(error)
    } catch {
      // onError itself threw: there is nobody left to tell.
    }
  }

  function advance(topic: string, partition: number, next: bigint): void {
    const key = partitionKey(topic, partition)
    const current = cursors.get(key)
    if (current === undefined || next > current.offset) cursors.set(key, { topic, partition, offset: next })
  }

  /** True (and the cursor moves) when the frame is new; false for a frame the client already has. */
  function accept(frame: { topic: string; partition: number; offset: string }): boolean {
    const offset = BigInt(frame.offset)
    const current = cursors.get(partitionKey(frame.topic, frame.partition))
    if (current !== undefined && offset < current.offset) return false
    advance(frame.topic, frame.partition, offset + 1n)
    return true
  }

  function write(frame: ClientFrame): boolean {
    if (socket === undefined || socket.readyState !== WebSocketImpl.OPEN || !welcomed) return false
    socket.send(encodeFrame(frame, encoding) as string | Uint8Array<ArrayBuffer>)
    return true
  }

  async function tokenValue(): Promise<string> {
    return typeof options.token === 'string' ? options.token : await options.token()
  }

  function urlValue(): string {
    const base = typeof options.url === 'string' ? options.url : options.url()
    const url = new URL(base)
    if (sessionNonce !== undefined) url.searchParams.set('session', sessionNonce)
    if (encoding !== 'json') url.searchParams.set('encoding', encoding)
    if (keys !== undefined) url.searchParams.set('key', keys.publicKey)
    return url.toString()
  }

  async function open(): Promise<void> {
    if (state === 'closed') return
    let token: string
    try {
      token = await tokenValue()
    } catch (cause) {
      scheduleReconnect(gatewayError('WEIR_ERR_UNAUTHENTICATED', 'the token source failed', { cause }))
      return
    }
    // close() may have run while the token was fetched.
    if ((state as ClientState) === 'closed') return
    welcomed = false
    const ws = new WebSocketImpl(urlValue(), [SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`])
    ws.binaryType = 'arraybuffer'
    socket = ws
    const connection: Connection = { ws, key: undefined }
    ws.onmessage = (event: MessageEvent) => {
      if (socket !== ws) return
      const data = event.data as string | ArrayBuffer
      const frame = typeof data === 'string' ? parseServerFrame(data, false) : parseServerFrame(new Uint8Array(data), true)
      if (frame === undefined) return
      // Sealed results are decrypted asynchronously; the chain keeps every frame in arrival order.
      inbox = inbox.then(() => onFrame(connection, frame)).catch((error: unknown) => tellError(error as WeirError))
    }
    ws.onclose = (event: CloseEvent) => {
      if (socket !== ws) return
      socket = undefined
      welcomed = false
      if (state === 'closed') return
      const error =
        event.code === 4001
          ? gatewayError('WEIR_ERR_TOKEN_EXPIRED', 'the gateway closed the connection: token expired')
          : gatewayError('WEIR_ERR_CLOSED', `connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`)
      scheduleReconnect(error)
    }
  }

  function scheduleReconnect(error: WeirError): void {
    if (state === 'closed') return
    if (reconnect === undefined) {
      if (firstOpen) openedReject(error)
      api.close()
      return
    }
    setState('reconnecting')
    attempt++
    const delay = Math.min(reconnect.maxDelayMs, reconnect.initialDelayMs * 2 ** Math.min(attempt - 1, 16))
    clearTimeout(reconnectTimer)
    reconnectTimer = setTimeout(() => void open(), delay / 2 + Math.random() * (delay / 2))
  }

  async function onFrame(connection: Connection, received: ServerFrame): Promise<void> {
    let frame = received
    if ((frame.type === 'result' || frame.type === 'timeout') && frame.sealed !== undefined) {
      const sealed = frame
      try {
        frame = await unseal(sealed, await connection.key)
      } catch (error) {
        if (!accept(sealed)) return
        const p = pending.get(sealed.requestId)
        if (p === undefined) throw error
        settle(p)
        p.reject(error as WeirError)
        return
      }
    }
    switch (frame.type) {
      case 'welcome': {
        if (keys !== undefined && frame.sealing !== undefined) {
          connection.key = deriveSealingKey(keys, frame.sealing, frame.sessionId)
          connection.key.catch(() => {})
        }
        if (socket !== connection.ws) return
        welcomed = true
        attempt = 0
        sessionId = frame.sessionId
        sessionNonce = frame.sessionNonce
        scheduleRefresh(frame.expiresAt)
        // Resume first (results), then subscriptions (events, from the same offsets), then unacked commands.
        write({ type: 'resume', offsets: api.offsets() })
        for (const alias of handlers.keys()) write({ type: 'subscribe', topic: alias })
        for (const p of pending.values()) if (!p.acked) write(p.frame)
        return
      }
      case 'resumed':
        for (const p of frame.positions) advance(p.topic, p.partition, BigInt(p.offset))
        setState('open')
        if (firstOpen) {
          firstOpen = false
          clearTimeout(connectTimer)
          openedResolve()
        }
        return
      case 'checkpoint':
        for (const p of frame.positions) advance(p.topic, p.partition, BigInt(p.offset))
        return
      case 'subscribed':
        eventsTopics.set(frame.topic, frame.eventsTopic)
        for (const p of frame.positions) advance(p.topic, p.partition, BigInt(p.offset))
        return
      case 'ack': {
        const p = pending.get(frame.requestId)
        if (p === undefined || p.acked) return
        p.acked = true
        notify('onAck', p.onAck, frame)
        if (frame.deadline !== undefined) guard(p, frame.deadline - Date.now() + outcomeGraceMs)
        return
      }
      case 'result':
      case 'timeout': {
        if (!accept(frame)) return
        const p = pending.get(frame.requestId)
        if (p === undefined) {
          notify('onResult', options.onResult, frame)
          return
        }
        settle(p)
        if (frame.type === 'timeout') {
          p.reject(gatewayError('WEIR_ERR_DEADLINE_EXCEEDED', `no result for ${frame.requestId} before its deadline`, { details: { result: frame } }))
        } else if (frame.status === 'error') {
          const code = (frame.payload as { code?: unknown } | null)?.code
          const message = (frame.payload as { message?: unknown } | null)?.message
          p.reject(
            gatewayError(isWireErrorCode(code) ? code : 'WEIR_ERR_PROCESSING', typeof message === 'string' ? message : `command ${frame.requestId} failed`, {
              details: { result: frame },
            }),
          )
        } else {
          // A result by reference is downloaded and verified first (client-payloads.ts).
          if (frame.payloadRef === undefined) p.resolve(frame)
          else resolvePayload(httpOrigin(urlValue()), frame).then(p.resolve, p.reject)
        }
        return
      }
      case 'event': {
        if (!accept(frame)) return
        // An event by reference is downloaded before the handlers see it (in order: frames are handled one at a time);
        // if that fails, onError hears why and the handlers get the frame with its payloadRef.
        const event = frame.payloadRef === undefined ? frame : await resolvePayload(httpOrigin(urlValue()), frame).catch((error: unknown) => (tellError(error as WeirError), frame))
        for (const [alias, set] of handlers) {
          const topic = eventsTopics.get(alias)
          if (topic === frame.topic || (topic === undefined && alias === frame.topicAlias)) for (const handler of set.keys()) notify('event handler', handler, event)
        }
        return
      }
      case 'gap':
        advance(frame.topic, frame.partition, BigInt(frame.to))
        notify('onGap', options.onGap, frame)
        return
      case 'error': {
        const error = gatewayError(frame.code, frame.message, frame.details === undefined ? {} : { details: frame.details })
        const p = frame.requestId === undefined ? undefined : pending.get(frame.requestId)
        const alias = frame.details?.topic
        if (p === undefined && typeof alias === 'string' && handlers.has(alias) && SUBSCRIPTION_REFUSED.has(frame.code)) {
          refuseSubscription(alias, error)
          return
        }
        if (p === undefined) {
          tellError(error)
          return
        }
        if (RESEND_CODES.has(frame.code)) return // sent again after the reconnect
        settle(p)
        p.reject(error)
        return
      }
      case 'authenticated':
        scheduleRefresh(frame.expiresAt)
        return
      case 'unsubscribed':
        return
      default: {
        // A server frame type without a case here does not compile.
        const unhandled: never = frame
        return unhandled
      }
    }
  }

  /** The gateway refused or ended a subscription: its handlers go, and are told. */
  function refuseSubscription(alias: string, error: WeirError): void {
    const set = handlers.get(alias)
    forget(alias)
    const told = [...new Set(set?.values() ?? [])].filter((onError) => onError !== undefined)
    if (told.length === 0) tellError(error)
    for (const onError of told) notify('subscription onError', onError, error)
  }

  /** Drops an alias's handlers and the positions of an events topic no subscription reads any more. */
  function forget(alias: string): void {
    handlers.delete(alias)
    const topic = eventsTopics.get(alias)
    eventsTopics.delete(alias)
    if (topic !== undefined && ![...eventsTopics.values()].includes(topic)) {
      for (const [key, cursor] of cursors) if (cursor.topic === topic) cursors.delete(key)
    }
  }

  function guard(p: Pending, ms: number): void {
    clearTimeout(p.timer)
    p.timer = setTimeout(() => {
      if (pending.get(p.requestId) !== p) return
      settle(p)
      p.reject(gatewayError('WEIR_ERR_TIMEOUT', `no outcome for ${p.requestId} within its deadline plus ${outcomeGraceMs} ms`))
    }, Math.max(0, ms))
  }

  function settle(p: Pending): void {
    clearTimeout(p.timer)
    pending.delete(p.requestId)
  }

  function scheduleRefresh(expiresAt: number | undefined): void {
    clearTimeout(refreshTimer)
    if (expiresAt === undefined || typeof options.token === 'string') return
    const delay = Math.max(1000, expiresAt - Date.now() - refreshBeforeExpiryMs)
    refreshTimer = setTimeout(() => {
      api.refreshToken().catch((error: unknown) => tellError(error as WeirError))
    }, delay)
  }

  const api: GatewayClient = {
    get state() {
      return state
    },
    get sessionId() {
      return sessionId
    },
    get sessionNonce() {
      return sessionNonce
    },

    send(path, payload, sendOptions = {}) {
      if (state === 'closed') return Promise.reject(gatewayError('WEIR_ERR_CLOSED', 'the client is closed'))
      const requestId = sendOptions.requestId ?? newRequestId()
      const existing = pending.get(requestId)
      if (existing !== undefined) return Promise.reject(gatewayError('WEIR_ERR_INVALID_OPTIONS', `requestId ${requestId} is already in flight`))
      // A large payload is uploaded before the command is sent (client-payloads.ts).
      return preparePayload(httpOrigin(urlValue()), tokenValue, payload, options.uploadThresholdBytes ?? DEFAULT_UPLOAD_THRESHOLD).then((prepared) => new Promise<ResultFrame>((resolve, reject) => {
      const frame: ClientFrame = {
        type: 'command',
        path,
        requestId,
        ...prepared,
        ...(sendOptions.ttlMs === undefined ? {} : { ttlMs: sendOptions.ttlMs }),
        ...(sendOptions.traceparent === undefined ? {} : { traceparent: sendOptions.traceparent }),
      }
        const p: Pending = { requestId, frame, resolve, reject, onAck: sendOptions.onAck, acked: false, timer: undefined }
        pending.set(requestId, p)
        guard(p, (sendOptions.ttlMs ?? defaultTtlMs) + outcomeGraceMs)
        write(frame) // else sent when the connection is (re)established
      }))
    },

    subscribe(topicAlias, handler, subscribeOptions = {}) {
      let set = handlers.get(topicAlias)
      if (set === undefined) {
        set = new Map()
        handlers.set(topicAlias, set)
        write({ type: 'subscribe', topic: topicAlias })
      }
      set.set(handler, subscribeOptions.onError)
      return () => {
        const current = handlers.get(topicAlias)
        if (current !== set || !current.delete(handler) || current.size > 0) return
        forget(topicAlias)
        write({ type: 'unsubscribe', topic: topicAlias })
      }
    },

    async refreshToken(token) {
      const value = token ?? (await tokenValue())
      if (!write({ type: 'auth', token: value })) throw gatewayError('WEIR_ERR_CLOSED', 'not connected: the next connection uses the token source')
    },

    offsets() {
      return [...cursors.values()].map((c) => ({ topic: c.topic, partition: c.partition, offset: c.offset.toString() }))
    },

    reconnect() {
      if (state === 'closed') return
      const ws = socket
      // Detached first, so its close event does not schedule a second reconnect.
      socket = undefined
      welcomed = false
      if (ws !== undefined && (ws.readyState === WebSocketImpl.OPEN || ws.readyState === WebSocketImpl.CONNECTING)) ws.close(1000, 'client reconnecting')
      clearTimeout(reconnectTimer)
      attempt = 0
      setState('reconnecting')
      void open()
    },

    close() {
      if (state === 'closed') return
      setState('closed')
      clearTimeout(reconnectTimer)
      clearTimeout(refreshTimer)
      clearTimeout(connectTimer)
      const ws = socket
      socket = undefined
      if (ws !== undefined && (ws.readyState === WebSocketImpl.OPEN || ws.readyState === WebSocketImpl.CONNECTING)) ws.close(1000, 'client closed')
      for (const p of [...pending.values()]) {
        settle(p)
        p.reject(gatewayError('WEIR_ERR_CLOSED', 'the client was closed before the outcome arrived'))
      }
      if (firstOpen) openedReject(gatewayError('WEIR_ERR_CLOSED', 'the client was closed before it connected'))
    },
  }

  void open()
  return { api, opened }
}

export type { WireErrorCode }
export type { AckFrame, EventFrame, FrameOffset, GapFrame, ResultFrame, TimeoutFrame } from './protocol.ts'

/** A v4 UUID. crypto.randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere. */
function newRequestId(): string {
  if (typeof globalThis.crypto.randomUUID === 'function') return globalThis.crypto.randomUUID()
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16))
  b[6] = ((b[6] as number) & 0x0f) | 0x40
  b[8] = ((b[8] as number) & 0x3f) | 0x80
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
