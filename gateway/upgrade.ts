// The handshake: an HTTP upgrade is checked (RFC 6455 headers, subprotocol, session nonce, encoding, sealing
// key), its token verified, and the socket's state made; a refusal is an HTTP status with a coded JSON body.
import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js'

import { channels as coreChannels, publish } from '../core/diagnostics.ts'
import { isWeirError } from '../core/errors.ts'
import { newSessionNonce, sessionIdOf, SESSION_NONCE } from './auth.ts'
import type { Identity } from './auth.ts'
import type { GatewayContext } from './context.ts'
import { describeCode } from './errors.ts'
import type { WireErrorCode } from './errors.ts'
import { BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL, fromBase64Url } from './protocol.ts'
import type { Encoding } from './protocol.ts'
import { createTokenBucket } from './rate-limit.ts'
import { createSealer } from './sealing.ts'
import type { Sealer } from './sealing.ts'
import type { SocketState } from './socket-state.ts'

export interface Handshake {
  /** uWS's `upgrade` handler of the gateway's socket route. */
  upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void
  /** A GET of the socket path that uWS did not take for an upgrade. */
  notAnUpgrade(res: HttpResponse): void
}

export function createHandshake(ctx: GatewayContext): Handshake {
  const { config, metrics, instanceId, verifier } = ctx
  let connectionIds = 0

  function rejectUpgrade(res: HttpResponse, status: string, code: WireErrorCode, message: string, violations?: readonly string[]): void {
    metrics.upgradesRejected.inc({ code })
    publish(coreChannels.gatewayConnection, { instanceId, event: 'rejected', code: Number.parseInt(status, 10), reason: code })
    const body = JSON.stringify({ code, message, ...(violations === undefined ? {} : { details: { violations } }) })
    res.cork(() => {
      res.writeStatus(status).writeHeader('content-type', 'application/json')
      // RFC 6455 4.2.2: a refused version is answered with the versions the server speaks.
      if (violations?.some((v) => v.startsWith('Sec-WebSocket-Version'))) res.writeHeader('sec-websocket-version', '13')
      res.end(body)
    })
  }

  function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // Everything from req is read now: it is invalid after this handler returns.
    const key = req.getHeader('sec-websocket-key')
    const version = req.getHeader('sec-websocket-version')
    const upgradeHeader = req.getHeader('upgrade')
    const extensions = req.getHeader('sec-websocket-extensions')
    const offered = req
      .getHeader('sec-websocket-protocol')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p.length > 0)
    const authorization = req.getHeader('authorization')
    const query = new URLSearchParams(req.getQuery() ?? '')
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    if (ctx.state !== 'running') {
      rejectUpgrade(res, '503 Service Unavailable', 'WEIR_ERR_CLOSED', 'the gateway is not accepting connections')
      return
    }
    const bearer = offered.find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX))
    const token = /^Bearer\s+(.+)$/i.exec(authorization)?.[1] ?? bearer?.slice(BEARER_SUBPROTOCOL_PREFIX.length) ?? query.get('access_token') ?? ''
    const nonce = query.get('session') ?? undefined
    const encoding = query.get('encoding') ?? 'json'
    const clientKey = query.get('key') ?? undefined
    const problems: string[] = []
    // uWS routes any GET with a 24-character Sec-WebSocket-Key here; RFC 6455 4.2.1 also asks for these two.
    if (upgradeHeader.toLowerCase() !== 'websocket') problems.push(`Upgrade must be websocket, got ${JSON.stringify(upgradeHeader)}`)
    if (version !== '13') problems.push(`Sec-WebSocket-Version must be 13, got ${JSON.stringify(version)}`)
    if (clientKey !== undefined && !/^[A-Za-z0-9_-]{87}$/.test(clientKey)) problems.push('key must be a base64url uncompressed P-256 public key (65 bytes)')
    if (nonce !== undefined && !SESSION_NONCE.test(nonce)) problems.push('session must be 16 to 128 characters of [A-Za-z0-9_-]')
    if (encoding !== 'json' && encoding !== 'msgpack') problems.push('encoding must be json or msgpack')
    if (offered.length > 0 && !offered.includes(SUBPROTOCOL)) problems.push(`offered subprotocols must include ${SUBPROTOCOL}`)
    if (problems.length > 0) {
      rejectUpgrade(res, '400 Bad Request', 'WEIR_ERR_HANDSHAKE_INVALID', problems.join('; '), problems)
      return
    }
    // Upgrade now when the token can be accepted without waiting (TokenVerifier.acceptSync): an upgrade completed
    // after an await runs in res.cork, where this uWS build sometimes closes the new socket (docs/gateway.md).
    const accepted = verifier.acceptSync(token)
    if (accepted !== undefined) {
      completeUpgrade(accepted, false)
      return
    }
    verifier.verify(token).then(
      (identity: Identity) => {
        if (aborted) return
        if (ctx.state !== 'running') {
          rejectUpgrade(res, '503 Service Unavailable', 'WEIR_ERR_CLOSED', 'the gateway is not accepting connections')
          return
        }
        completeUpgrade(identity, true)
      },
      (error: unknown) => {
        if (aborted) return
        const code = isWeirError(error) ? error.code : 'WEIR_ERR_UNAUTHENTICATED'
        rejectUpgrade(res, '401 Unauthorized', code, error instanceof Error ? error.message : describeCode(code))
      },
    )

    function completeUpgrade(identity: Identity, later: boolean): void {
      const sessionNonce = nonce ?? newSessionNonce()
      const sessionId = sessionIdOf(config.sessionSecret, identity.subject, sessionNonce)
      let sealer: Sealer | undefined
      try {
        sealer = clientKey === undefined ? undefined : createSealer(fromBase64Url(clientKey), sessionId)
      } catch (error) {
        const message = (error as Error).message
        rejectUpgrade(res, '400 Bad Request', 'WEIR_ERR_HANDSHAKE_INVALID', message, [message])
        return
      }
      const socketState: SocketState = {
        connectionId: ++connectionIds,
        subject: identity.subject,
        roles: identity.roles,
        claims: identity.claims,
        expiresAt: identity.expiresAt,
        sessionId,
        sessionNonce,
        encoding: encoding as Encoding,
        bucket: createTokenBucket(config.rateLimit.ratePerSecond, config.rateLimit.burst, Date.now()),
        closed: false,
        results: 'idle',
        events: new Map(),
        resumeOffsets: new Map(),
        drainWaiters: [],
        closeReason: undefined,
        sealer,
        upgrade: later ? 'async' : 'sync',
      }
      // Inside the upgrade handler uWS has corked the response already; after an await it must be corked here.
      const upgradeSocket = () => res.upgrade(socketState, key, offered.length > 0 ? SUBPROTOCOL : '', extensions, context)
      if (later) res.cork(upgradeSocket)
      else upgradeSocket()
    }
  }

  // uWS hands a GET of the socket path to its WebSocket route only with `Upgrade: websocket` and a
  // Sec-WebSocket-Key of 24 characters; anything else lands here.
  function notAnUpgrade(res: HttpResponse): void {
    const problem = 'not a WebSocket upgrade: it needs Upgrade: websocket, Connection: Upgrade and a Sec-WebSocket-Key of 16 bytes in base64'
    rejectUpgrade(res, '400 Bad Request', 'WEIR_ERR_HANDSHAKE_INVALID', problem, [problem])
  }

  return { upgrade, notAnUpgrade }
}
