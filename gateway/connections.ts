// Open sockets: the `welcome` on open, the registry of sockets per session, backpressure (drain, dropped),
// the bookkeeping on close, expired tokens, and the closing of every socket at shutdown.
import { channels as coreChannels, publish } from '../core/diagnostics.ts'
import type { GatewayContext } from './context.ts'
import { PROTOCOL_VERSION, SEALING_ALG, closeCodes } from './protocol.ts'
import { ALL_TOPIC, send, withEncoding } from './sender.ts'
import type { Session } from './session.ts'
import { addToSession, removeFromSession } from './socket-state.ts'
import type { Socket } from './socket-state.ts'

export interface Connections {
  open(ws: Socket): void
  drain(ws: Socket): void
  dropped(ws: Socket): void
  close(ws: Socket, code: number, message: ArrayBuffer): void
  /** Ends the sockets whose token expired (beyond the clock tolerance) without an `auth` refresh. */
  sweepExpiredTokens(): void
  /** Closes every open socket with 1001: its client reconnects elsewhere and resumes. */
  closeAll(): void
}

const closeReasonText = new TextDecoder()

export function createConnections(ctx: GatewayContext, session: Session): Connections {
  const { config, metrics, instanceId, sockets } = ctx

  function open(ws: Socket): void {
    const s = ws.getUserData()
    sockets.all.add(ws)
    addToSession(sockets.bySession, s.sessionId, ws)
    metrics.connections.inc()
    metrics.connectionsOpened.inc()
    ws.subscribe(withEncoding(ALL_TOPIC, s.encoding))
    publish(coreChannels.gatewayConnection, { instanceId, event: 'open', subject: s.subject, sessionId: s.sessionId, upgrade: s.upgrade })
    send(ws, s, {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      sessionId: s.sessionId,
      sessionNonce: s.sessionNonce,
      subject: s.subject,
      ...(s.expiresAt === undefined ? {} : { expiresAt: s.expiresAt }),
      limits: { maxFrameBytes: config.maxFrameBytes, ratePerSecond: config.rateLimit.ratePerSecond, burst: config.rateLimit.burst },
      ...(s.sealer === undefined ? {} : { sealing: { alg: SEALING_ALG, epk: s.sealer.epk } }),
    })
  }

  function drain(ws: Socket): void {
    const s = ws.getUserData()
    if (!s.closed && ws.getBufferedAmount() < config.maxBackpressure / 2) session.releaseDrainWaiters(s)
  }

  function dropped(ws: Socket): void {
    const s = ws.getUserData()
    if (s.closeReason === undefined) {
      s.closeReason = 'backpressure'
      metrics.backpressureCloses.inc()
    }
  }

  function close(ws: Socket, code: number, message: ArrayBuffer): void {
    const s = ws.getUserData()
    // Why, when the gateway did not close it: the client's close reason, or uWS's own when it dropped the
    // connection itself (an invalid UTF-8 text frame, a frame over maxPayloadLength, idle timeout).
    const reason = s.closeReason ?? (message.byteLength > 0 ? closeReasonText.decode(message) : undefined)
    s.closed = true
    sockets.all.delete(ws)
    removeFromSession(sockets.sealed, s.sessionId, ws)
    removeFromSession(sockets.bySession, s.sessionId, ws)
    s.events.clear()
    session.releaseDrainWaiters(s)
    metrics.connections.dec()
    publish(coreChannels.gatewayConnection, {
      instanceId,
      event: 'close',
      subject: s.subject,
      sessionId: s.sessionId,
      code,
      ...(reason === undefined ? {} : { reason }),
    })
  }

  function sweepExpiredTokens(): void {
    const now = Date.now()
    const tolerance = (config.auth.clockToleranceSec ?? 5) * 1000
    for (const ws of sockets.all) {
      const s = ws.getUserData()
      if (s.closed || s.expiresAt === undefined || now <= s.expiresAt + tolerance) continue
      ctx.sendError(ws, s, 'WEIR_ERR_TOKEN_EXPIRED', 'the token expired; reconnect with a fresh token (refresh earlier with an auth frame)')
      s.closeReason = 'token expired'
      ws.end(closeCodes.tokenExpired, 'token expired')
    }
  }

  function closeAll(): void {
    for (const ws of [...sockets.all]) {
      const s = ws.getUserData()
      if (s.closed) continue
      s.closeReason = 'shutdown'
      ws.end(closeCodes.goingAway, 'gateway shutting down')
    }
  }

  return { open, drain, dropped, close, sweepExpiredTokens, closeAll }
}
