// The client's WebSocket, one at a time: opening it (token, subprotocols, URL), writing frames once the gateway
// welcomed it, handing its frames on in arrival order, and reconnecting after a drop with exponential backoff and
// jitter.
import type { WeirError } from '../../core/errors.ts'
import { gatewayError } from '../errors.ts'
import { BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL, encodeFrame, parseServerFrame } from '../protocol.ts'
import type { ClientFrame, Encoding, ServerFrame } from '../protocol.ts'

/** One WebSocket connection: frames are handled in arrival order, with this connection's sealing key. */
export interface Connection {
  readonly ws: WebSocket
  key: Promise<CryptoKey> | undefined
}

export interface Socket {
  /** Opens a connection (no-op once the client is closed). */
  open(): Promise<void>
  /** Writes a frame; false when no connection is open and welcomed. */
  write(frame: ClientFrame): boolean
  /** The gateway welcomed this connection: writes may start. False when it is no longer the current one. */
  welcomed(connection: Connection): boolean
  /** Detaches and closes the current connection (its close event schedules nothing) and cancels a pending reconnect. */
  drop(reason: string): void
}

export interface SocketOptions {
  readonly WebSocket: typeof WebSocket
  readonly encoding: Encoding
  /** undefined: no reconnecting. */
  readonly reconnect: { readonly initialDelayMs: number; readonly maxDelayMs: number } | undefined
  url(): string
  token(): Promise<string>
  closed(): boolean
  /** A frame of a connection; the next one waits until the returned promise settles. */
  onFrame(connection: Connection, frame: ServerFrame): Promise<void>
  /** What onFrame threw. */
  onFrameError(error: WeirError): void
  /** A reconnect is scheduled. */
  onReconnecting(): void
  /** The connection was lost and reconnecting is off. */
  onLost(error: WeirError): void
}

export function createSocket(options: SocketOptions): Socket {
  const WebSocketImpl = options.WebSocket
  let socket: WebSocket | undefined
  let welcomed = false
  let attempt = 0
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined
  let inbox: Promise<void> = Promise.resolve()

  async function open(): Promise<void> {
    if (options.closed()) return
    let token: string
    try {
      token = await options.token()
    } catch (cause) {
      scheduleReconnect(gatewayError('WEIR_ERR_UNAUTHENTICATED', 'the token source failed', { cause }))
      return
    }
    // close() may have run while the token was fetched.
    if (options.closed()) return
    welcomed = false
    const ws = new WebSocketImpl(options.url(), [SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`])
    ws.binaryType = 'arraybuffer'
    socket = ws
    const connection: Connection = { ws, key: undefined }
    ws.onmessage = (event: MessageEvent) => {
      if (socket !== ws) return
      const data = event.data as string | ArrayBuffer
      const frame = typeof data === 'string' ? parseServerFrame(data, false) : parseServerFrame(new Uint8Array(data), true)
      if (frame === undefined) return
      // Sealed results are decrypted asynchronously; the chain keeps every frame in arrival order.
      inbox = inbox.then(() => options.onFrame(connection, frame)).catch((error: unknown) => options.onFrameError(error as WeirError))
    }
    ws.onclose = (event: CloseEvent) => {
      if (socket !== ws) return
      socket = undefined
      welcomed = false
      if (options.closed()) return
      const error =
        event.code === 4001
          ? gatewayError('WEIR_ERR_TOKEN_EXPIRED', 'the gateway closed the connection: token expired')
          : gatewayError('WEIR_ERR_CLOSED', `connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`)
      scheduleReconnect(error)
    }
  }

  function scheduleReconnect(error: WeirError): void {
    if (options.closed()) return
    const reconnect = options.reconnect
    if (reconnect === undefined) {
      options.onLost(error)
      return
    }
    options.onReconnecting()
    attempt++
    const delay = Math.min(reconnect.maxDelayMs, reconnect.initialDelayMs * 2 ** Math.min(attempt - 1, 16))
    clearTimeout(reconnectTimer)
    reconnectTimer = setTimeout(() => void open(), delay / 2 + Math.random() * (delay / 2))
  }

  return {
    open,

    write(frame) {
      if (socket === undefined || socket.readyState !== WebSocketImpl.OPEN || !welcomed) return false
      socket.send(encodeFrame(frame, options.encoding) as string | Uint8Array<ArrayBuffer>)
      return true
    },

    welcomed(connection) {
      if (socket !== connection.ws) return false
      welcomed = true
      attempt = 0
      return true
    },

    drop(reason) {
      const ws = socket
      socket = undefined
      welcomed = false
      if (ws !== undefined && (ws.readyState === WebSocketImpl.OPEN || ws.readyState === WebSocketImpl.CONNECTING)) ws.close(1000, reason)
      clearTimeout(reconnectTimer)
      attempt = 0
    },
  }
}
