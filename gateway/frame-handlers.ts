// Frames from the client: rate limit, strict parsing, then one handler per frame type, from a table keyed by
// the frame types of frame-types.ts (a type without a handler does not compile). `command` frames go to
// commands.ts; `resume` and `subscribe` start the socket's streams (session.ts).
import { isWeirError } from '../core/errors.ts'
import { partitionKey } from '../kafka/index.ts'
import type { TopicPartitionOffset } from '../kafka/index.ts'
import { parseClientFrame } from './client-frame-parser.ts'
import type { Commands } from './commands.ts'
import type { GatewayContext } from './context.ts'
import type { LiveStream } from './live-stream.ts'
import type { ClientFrame, ClientFrameType, ClientFrames, FrameOffset } from './protocol.ts'
import { broadcastTopic, send, withEncoding } from './sender.ts'
import type { Session } from './session.ts'
import type { Socket, SocketState } from './socket-state.ts'

type FrameHandler<K extends ClientFrameType> = (ws: Socket, s: SocketState, frame: ClientFrames[K]) => void

/** uWS's `message` handler of the gateway's socket route. */
export function createMessageHandler(ctx: GatewayContext, session: Session, commands: Commands): (ws: Socket, data: ArrayBuffer, isBinary: boolean) => void {
  const { catalog, config, metrics, topics, verifier } = ctx

  const handlers: { readonly [K in ClientFrameType]: FrameHandler<K> } = {
    command: commands.handle,
    subscribe: onSubscribe,
    unsubscribe: onUnsubscribe,
    resume: onResume,
    auth: onAuth,
  }

  function onMessage(ws: Socket, data: ArrayBuffer, isBinary: boolean): void {
    const s = ws.getUserData()
    if (s.closed) return
    try {
      handleMessage(ws, s, data, isBinary)
    } catch (error) {
      // A defect, not bad input (bad input gets coded error frames): reported, and the connection goes on.
      ctx.reportError(error, 'message handler')
      ctx.sendError(ws, s, 'WEIR_ERR_PROCESSING', 'the gateway failed to handle this frame')
    }
  }

  function handleMessage(ws: Socket, s: SocketState, data: ArrayBuffer, isBinary: boolean): void {
    const wait = s.bucket.take(Date.now())
    if (wait > 0) {
      ctx.sendError(ws, s, 'WEIR_ERR_RATE_LIMITED', `rate limit of ${config.rateLimit.ratePerSecond} frames/s exceeded`, { details: { retryAfterMs: wait } })
      return
    }
    // Decoded synchronously: `data` is neutered when this handler returns. msgpack bin values may point into
    // the buffer they came from, so binary frames are copied first.
    const bytes = isBinary && data.byteLength <= config.maxFrameBytes ? new Uint8Array(data.slice(0)) : new Uint8Array(data)
    const parsed = parseClientFrame(bytes, isBinary, config.maxFrameBytes)
    if (!parsed.ok) {
      ctx.sendError(ws, s, parsed.code, parsed.message, {
        ...(parsed.requestId === undefined ? {} : { requestId: parsed.requestId }),
        ...(parsed.violations === undefined ? {} : { details: { violations: parsed.violations } }),
      })
      return
    }
    const frame = parsed.frame
    metrics.framesReceived.inc({ type: frame.type })
    // The table pairs each type with its frame's handler; TypeScript cannot follow that pairing through an index.
    const handler = handlers[frame.type] as (ws: Socket, s: SocketState, frame: ClientFrame) => void
    handler(ws, s, frame)
  }

  function toPositions(offsets: readonly FrameOffset[]): TopicPartitionOffset[] {
    return offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: BigInt(o.offset) }))
  }

  /** The catalog's rule for the alias's events; a rule that throws (a defect) refuses. */
  function maySubscribe(s: SocketState, alias: string): boolean {
    try {
      return catalog.maySubscribe(alias, { subject: s.subject, roles: s.roles, claims: s.claims })
    } catch (error) {
      ctx.reportError(error, `eventStreams.${alias}.allow`)
      return false
    }
  }

  function forbiddenMessage(alias: string): string {
    const roles = catalog.eventStream(alias)?.roles ?? []
    return `events of ${alias} are not for this subject${roles.length > 0 ? ` (they need one of the roles ${roles.join(', ')})` : ''}`
  }

  function onResume(ws: Socket, s: SocketState, frame: ClientFrames['resume']): void {
    if (s.results !== 'idle') {
      ctx.sendError(ws, s, 'WEIR_ERR_FRAME_INVALID', 'resume must be the first frame of a connection that carries results (send it before any command)')
      return
    }
    const results: TopicPartitionOffset[] = []
    const unknown: string[] = []
    const forbidden: string[] = []
    for (const position of toPositions(frame.offsets)) {
      const known = (ctx.live as LiveStream).position(position.topic, position.partition) !== undefined
      const aliases = topics.eventAliases.get(position.topic)
      if (known && topics.resultSet.has(position.topic)) results.push(position)
      else if (known && aliases !== undefined) {
        // Kept only for a subject that may subscribe to an alias of the topic; each subscribe checks its own alias again.
        if (aliases.some((alias) => maySubscribe(s, alias))) s.resumeOffsets.set(partitionKey(position.topic, position.partition), position)
        else forbidden.push(`${position.topic}[${position.partition}]`)
      } else unknown.push(`${position.topic}[${position.partition}]`)
    }
    if (unknown.length > 0) {
      ctx.sendError(ws, s, 'WEIR_ERR_UNKNOWN_TOPIC', `not a result or event partition of this gateway: ${unknown.slice(0, 10).join(', ')}`, {
        details: { partitions: unknown },
      })
    }
    if (forbidden.length > 0) {
      ctx.sendError(ws, s, 'WEIR_ERR_FORBIDDEN', `events of these partitions are not for this subject: ${forbidden.slice(0, 10).join(', ')}`, {
        details: { partitions: forbidden },
      })
    }
    session.startResults(ws, s, results)
  }

  function onSubscribe(ws: Socket, s: SocketState, frame: ClientFrames['subscribe']): void {
    const binding = catalog.topics[frame.topic]
    if (binding === undefined) {
      ctx.sendError(ws, s, 'WEIR_ERR_UNKNOWN_TOPIC', `no topic alias ${frame.topic}`, { details: { topic: frame.topic } })
      return
    }
    if (!maySubscribe(s, frame.topic)) {
      ctx.sendError(ws, s, 'WEIR_ERR_FORBIDDEN', forbiddenMessage(frame.topic), { details: { topic: frame.topic } })
      return
    }
    const current = s.events.get(frame.topic)
    if (current?.state === 'live') {
      send(ws, s, { type: 'subscribed', topic: frame.topic, eventsTopic: binding.events, positions: session.positionsFrom([binding.events], []), replayed: 0 })
      return
    }
    if (current !== undefined) return // catching up: its `subscribed` frame follows
    const requested = frame.offsets === undefined ? undefined : toPositions(frame.offsets)
    const from = (requested ?? [...s.resumeOffsets.values()]).filter(
      (p) => p.topic === binding.events && (ctx.live as LiveStream).position(p.topic, p.partition) !== undefined,
    )
    session.startEvents(ws, s, frame.topic, binding, from)
  }

  function onUnsubscribe(ws: Socket, s: SocketState, frame: ClientFrames['unsubscribe']): void {
    if (catalog.topics[frame.topic] === undefined) {
      ctx.sendError(ws, s, 'WEIR_ERR_UNKNOWN_TOPIC', `no topic alias ${frame.topic}`, { details: { topic: frame.topic } })
      return
    }
    s.events.delete(frame.topic)
    ws.unsubscribe(withEncoding(broadcastTopic(frame.topic), s.encoding))
    send(ws, s, { type: 'unsubscribed', topic: frame.topic })
  }

  function onAuth(ws: Socket, s: SocketState, frame: ClientFrames['auth']): void {
    verifier.verify(frame.token).then(
      (identity) => {
        if (s.closed) return
        if (identity.subject !== s.subject) {
          ctx.sendError(ws, s, 'WEIR_ERR_FORBIDDEN', 'a refreshed token must be for the same subject; open a new connection for another subject')
          return
        }
        s.roles = identity.roles
        s.claims = identity.claims
        s.expiresAt = identity.expiresAt
        send(ws, s, { type: 'authenticated', subject: identity.subject, ...(identity.expiresAt === undefined ? {} : { expiresAt: identity.expiresAt }) })
        // The new token's roles and claims apply to subscriptions too: one it no longer allows ends here.
        for (const alias of [...s.events.keys()]) {
          if (maySubscribe(s, alias)) continue
          s.events.delete(alias)
          ws.unsubscribe(withEncoding(broadcastTopic(alias), s.encoding))
          ctx.sendError(ws, s, 'WEIR_ERR_FORBIDDEN', `${forbiddenMessage(alias)}: the subscription ended`, { details: { topic: alias } })
        }
      },
      (error: unknown) => {
        if (s.closed) return
        const code = isWeirError(error) ? error.code : 'WEIR_ERR_UNAUTHENTICATED'
        ctx.sendError(ws, s, code, `token refresh rejected: ${(error as Error).message}`)
      },
    )
  }

  return onMessage
}
