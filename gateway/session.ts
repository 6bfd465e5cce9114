// The streams of one socket: the results of its session and the events of each subscription. A stream starts
// with a replay from the client's positions (catching up, paced by the socket's backpressure, a bounded number
// at once) and switches to live delivery (fan-out.ts) with no gap and no duplicate (replay.ts).
import type { TopicBinding } from '../commands/catalog.ts'
import { channels as coreChannels, publish } from '../core/diagnostics.ts'
import { partitionKey } from '../kafka/index.ts'
import type { ConsumedRecord, PartitionReader, TopicPartitionOffset } from '../kafka/index.ts'
import type { GatewayContext } from './context.ts'
import { eventFrame, resultFrame } from './frames.ts'
import { createLimiter } from './limiter.ts'
import type { LiveStream } from './live-stream.ts'
import { closeCodes } from './protocol.ts'
import type { FrameOffset } from './protocol.ts'
import { catchUp } from './replay.ts'
import { CHECKPOINT_TOPIC, broadcastTopic, send, sendResult, sessionTopic, withEncoding } from './sender.ts'
import { addToSession } from './socket-state.ts'
import type { EventStream, Socket, SocketState } from './socket-state.ts'

export interface Session {
  /** Results of the socket's session from `from` (replayed first), then live; ends with a `resumed` frame. */
  startResults(ws: Socket, s: SocketState, from: readonly TopicPartitionOffset[]): void
  /** Events of `alias` from `from` (replayed first), then live; ends with a `subscribed` frame. */
  startEvents(ws: Socket, s: SocketState, alias: string, binding: TopicBinding, from: readonly TopicPartitionOffset[]): void
  /** Where live delivery of `topics` stands, or the requested positions where they are further on. */
  positionsFrom(topics: readonly string[], requested: readonly TopicPartitionOffset[]): FrameOffset[]
  /** Wakes the replays waiting for the socket's buffer to drain (drained or closed). */
  releaseDrainWaiters(s: SocketState): void
}

interface ReplayHandlers {
  deliver(record: ConsumedRecord): boolean
  cancelled(): boolean
  goLive(replayed: number): void
}

export function createSession(ctx: GatewayContext): Session {
  const { config, metrics, instanceId, topics } = ctx
  const runReplay = createLimiter(config.replayConcurrency)

  function positionsFrom(streamTopics: readonly string[], requested: readonly TopicPartitionOffset[]): FrameOffset[] {
    const wanted = new Map(requested.map((p) => [partitionKey(p.topic, p.partition), p.offset]))
    return (ctx.live as LiveStream).positions(streamTopics).map((p) => {
      const asked = wanted.get(partitionKey(p.topic, p.partition))
      return asked !== undefined && asked > BigInt(p.offset) ? { ...p, offset: asked.toString() } : p
    })
  }

  function startResults(ws: Socket, s: SocketState, from: readonly TopicPartitionOffset[]): void {
    const goLive = (replayed: number) => {
      // Checkpoints only after the switch: during a replay they would claim positions not delivered yet.
      ws.subscribe(withEncoding(CHECKPOINT_TOPIC, s.encoding))
      if (s.sealer === undefined) ws.subscribe(withEncoding(sessionTopic(s.sessionId), s.encoding))
      else addToSession(ctx.sockets.sealed, s.sessionId, ws)
      s.results = 'live'
      send(ws, s, { type: 'resumed', positions: positionsFrom(topics.results, from), replayed })
    }
    if (from.length === 0) {
      goLive(0)
      return
    }
    s.results = 'catching-up'
    replayStream(ws, s, 'results', from, {
      deliver(record) {
        const envelope = ctx.decodeRecord(record, false)
        if (envelope?.kind !== 'result' || envelope.clientSessionId !== s.sessionId) return false
        sendResult(ws, s, resultFrame(record, envelope, ctx.blobLinker))
        return true
      },
      cancelled: () => false,
      goLive,
    })
  }

  function startEvents(ws: Socket, s: SocketState, alias: string, binding: TopicBinding, from: readonly TopicPartitionOffset[]): void {
    const stream: EventStream = { state: 'catching-up' }
    s.events.set(alias, stream)
    const goLive = (replayed: number) => {
      ws.subscribe(withEncoding(broadcastTopic(alias), s.encoding))
      stream.state = 'live'
      send(ws, s, { type: 'subscribed', topic: alias, eventsTopic: binding.events, positions: positionsFrom([binding.events], from), replayed })
    }
    if (from.length === 0) {
      goLive(0)
      return
    }
    replayStream(ws, s, `events:${alias}`, from, {
      deliver(record) {
        const envelope = ctx.decodeRecord(record, false)
        if (envelope?.kind !== 'event') return false
        send(ws, s, eventFrame(record, envelope, alias, envelope.clientSessionId === s.sessionId ? 'own' : (topics.othersAudience.get(alias) ?? 'public'), ctx.blobLinker))
        return true
      },
      // Unsubscribed (or re-subscribed) while catching up.
      cancelled: () => s.events.get(alias) !== stream,
      goLive,
    })
  }

  function replayStream(ws: Socket, s: SocketState, stream: string, from: readonly TopicPartitionOffset[], handlers: ReplayHandlers): void {
    const started = performance.now()
    let replayed = 0
    const run = runReplay(() =>
      catchUp({
        reader: ctx.replayReader as PartitionReader,
        live: ctx.live as LiveStream,
        from,
        deliver(record) {
          const sent = handlers.deliver(record)
          if (sent) replayed++
          return sent
        },
        gap(topic, partition, gapFrom, gapTo) {
          metrics.gaps.inc()
          send(ws, s, { type: 'gap', topic, partition, from: gapFrom.toString(), to: gapTo.toString() })
        },
        switchToLive: () => handlers.goLive(replayed),
        cancelled: () => s.closed || ctx.state === 'closed' || handlers.cancelled(),
        pace: () => pace(ws, s),
      }),
    )
    run.then(
      (result) => {
        metrics.replayedRecords.inc(result.replayed)
        publish(coreChannels.gatewayReplay, {
          instanceId,
          sessionId: s.sessionId,
          stream,
          replayed: result.replayed,
          gaps: result.gaps,
          durationMs: performance.now() - started,
          switched: result.switched,
        })
      },
      (error: unknown) => {
        publish(coreChannels.gatewayReplay, {
          instanceId,
          sessionId: s.sessionId,
          stream,
          replayed,
          gaps: 0,
          durationMs: performance.now() - started,
          switched: false,
          error,
        })
        if (s.closed) return
        // The client reconnects and resumes again from what it has.
        ctx.sendError(ws, s, 'WEIR_ERR_KAFKA', `replay of ${stream} failed: ${(error as Error).message}; reconnect to resume`)
        s.closeReason = 'replay failed'
        ws.end(closeCodes.replayFailed, 'replay failed')
      },
    )
  }

  function pace(ws: Socket, s: SocketState): Promise<void> {
    if (s.closed || ws.getBufferedAmount() < config.maxBackpressure / 2) return Promise.resolve()
    return new Promise((resolve) => s.drainWaiters.push(resolve))
  }

  function releaseDrainWaiters(s: SocketState): void {
    const waiters = s.drainWaiters
    s.drainWaiters = []
    for (const resolve of waiters) resolve()
  }

  return { startResults, startEvents, positionsFrom, releaseDrainWaiters }
}
