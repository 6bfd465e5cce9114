// connect(): composes the client from its parts (connection, token, cursors, commands in flight, subscriptions,
// the frame receiver) and keeps what they share: the client's state and its session.
import type { WeirError } from '../../core/errors.ts'
import { gatewayError } from '../errors.ts'
import type { ClientFrame, Encoding } from '../protocol.ts'
import { createCallbacks } from './callbacks.ts'
import { createSocket } from './connection.ts'
import { createCursors } from './cursors.ts'
import type { ClientState, GatewayClient, GatewayClientOptions } from './options.ts'
import { createReceiver } from './receiver.ts'
import { createRequests } from './requests.ts'
import { createSealingKeys } from './sealing.ts'
import type { SealingKeys } from './sealing.ts'
import { createSubscriptions } from './subscriptions.ts'
import { createTokenKeeper } from './token.ts'
import { DEFAULT_UPLOAD_THRESHOLD, httpOrigin } from './payloads.ts'

export async function connect(options: GatewayClientOptions): Promise<GatewayClient> {
  const keys = options.encryptResults === true ? await createSealingKeys() : undefined
  const client = createClient(options, keys)
  await client.opened
  return client.api
}

function createClient(options: GatewayClientOptions, keys: SealingKeys | undefined): { api: GatewayClient; opened: Promise<void> } {
  const encoding: Encoding = options.encoding ?? 'json'
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000

  let state: ClientState = 'connecting'
  let sessionId: string | undefined
  let sessionNonce = options.sessionNonce
  let firstOpen = true
  let openedResolve: () => void = () => {}
  let openedReject: (error: WeirError) => void = () => {}
  const opened = new Promise<void>((resolve, reject) => {
    openedResolve = resolve
    openedReject = reject
  })
  const connectTimer = setTimeout(() => {
    if (!firstOpen) return
    openedReject(gatewayError('WEIR_ERR_TIMEOUT', `no connection to the gateway within ${connectTimeoutMs} ms`))
    api.close()
  }, connectTimeoutMs)

  const callbacks = createCallbacks(options.onError)
  const write = (frame: ClientFrame): boolean => socket.write(frame)
  const cursors = createCursors(options.offsets ?? [])
  const token = createTokenKeeper({ token: options.token, refreshBeforeExpiryMs: options.refreshBeforeExpiryMs ?? 30_000, write, onError: callbacks.tellError })
  // Large payloads go over HTTP to the gateway the socket talks to (payloads.ts).
  const origin = () => httpOrigin(typeof options.url === 'string' ? options.url : options.url())
  const requests = createRequests({
    outcomeGraceMs: options.outcomeGraceMs ?? 10_000,
    defaultTtlMs: options.defaultTtlMs ?? 30_000,
    callbacks,
    write,
    origin,
    token: token.value,
    uploadThresholdBytes: options.uploadThresholdBytes ?? DEFAULT_UPLOAD_THRESHOLD,
  })
  const subscriptions = createSubscriptions({ callbacks, cursors, write })

  function setState(next: ClientState): void {
    if (state === next) return
    state = next
    callbacks.notify('onStateChange', options.onStateChange, next)
  }

  function url(): string {
    const base = typeof options.url === 'string' ? options.url : options.url()
    const result = new URL(base)
    if (sessionNonce !== undefined) result.searchParams.set('session', sessionNonce)
    if (encoding !== 'json') result.searchParams.set('encoding', encoding)
    if (keys !== undefined) result.searchParams.set('key', keys.publicKey)
    return result.toString()
  }

  const socket = createSocket({
    WebSocket: options.WebSocket ?? globalThis.WebSocket,
    encoding,
    reconnect: options.reconnect === false ? undefined : { initialDelayMs: 100, maxDelayMs: 5000, ...options.reconnect },
    url,
    token: token.value,
    closed: () => state === 'closed',
    onFrame: (connection, frame) => receive(connection, frame),
    onFrameError: callbacks.tellError,
    onReconnecting: () => setState('reconnecting'),
    onLost(error) {
      if (firstOpen) openedReject(error)
      api.close()
    },
  })

  const receive = createReceiver({
    keys,
    options,
    callbacks,
    socket,
    cursors,
    requests,
    subscriptions,
    origin,
    welcomed(frame) {
      sessionId = frame.sessionId
      sessionNonce = frame.sessionNonce
      token.schedule(frame.expiresAt)
    },
    resumed() {
      setState('open')
      if (firstOpen) {
        firstOpen = false
        clearTimeout(connectTimer)
        openedResolve()
      }
    },
    authenticated: (expiresAt) => token.schedule(expiresAt),
  })

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
      return requests.start(path, payload, sendOptions)
    },

    subscribe(topicAlias, handler, subscribeOptions = {}) {
      return subscriptions.add(topicAlias, handler, subscribeOptions.onError)
    },

    refreshToken(given) {
      return token.refresh(given)
    },

    offsets() {
      return cursors.list()
    },

    reconnect() {
      if (state === 'closed') return
      // Detached first, so its close event does not schedule a second reconnect.
      socket.drop('client reconnecting')
      setState('reconnecting')
      void socket.open()
    },

    close() {
      if (state === 'closed') return
      setState('closed')
      token.stop()
      clearTimeout(connectTimer)
      socket.drop('client closed')
      requests.rejectAll(() => gatewayError('WEIR_ERR_CLOSED', 'the client was closed before the outcome arrived'))
      if (firstOpen) openedReject(gatewayError('WEIR_ERR_CLOSED', 'the client was closed before it connected'))
    },
  }

  void socket.open()
  return { api, opened }
}
