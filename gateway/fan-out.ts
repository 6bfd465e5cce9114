// Live delivery: each batch the live stream reads goes out once, results to the sockets of their session and
// events to the subscribers of every alias bound to the topic, through uWS pub/sub.
import type { Envelope } from '../envelope/envelope.ts'
import type { ConsumedRecord, PartitionBatch } from '../kafka/index.ts'
import type { GatewayContext } from './context.ts'
import { eventFrame, resultFrame } from './frames.ts'
import { encodeFrame } from './protocol.ts'
import type { Encoding, ServerFrame } from './protocol.ts'
import { ALL_TOPIC, broadcastTopic, publishFrame, sendResult, sessionTopic, withEncoding } from './sender.ts'
import type { Socket } from './socket-state.ts'

export interface FanOut {
  /** One batch of a result or events partition, from the live stream. */
  dispatch(batch: PartitionBatch): void
  /** Records the live stream can no longer read (retention): every socket of the topic is told. */
  gap(topic: string, partition: number, from: bigint, to: bigint): void
}

export function createFanOut(ctx: GatewayContext): FanOut {
  const { app, metrics, topics, sockets } = ctx

  function dispatch(batch: PartitionBatch): void {
    const isResults = topics.resultSet.has(batch.topic)
    const aliases = topics.eventAliases.get(batch.topic) ?? []
    for (const record of batch.records) {
      const envelope = ctx.decodeRecord(record, true)
      if (envelope === undefined) continue
      if (isResults && envelope.kind === 'result' && envelope.clientSessionId !== undefined) {
        const frame = resultFrame(record, envelope, ctx.blobLinker)
        let delivered = publishFrame(app, sessionTopic(envelope.clientSessionId), frame)
        for (const ws of sockets.sealed.get(envelope.clientSessionId) ?? []) {
          sendResult(ws, ws.getUserData(), frame)
          delivered = true
        }
        if (delivered) metrics.resultsDelivered.inc()
      }
      if (envelope.kind === 'event') {
        for (const alias of aliases) if (publishEvent(alias, record, envelope)) metrics.eventsPublished.inc()
      }
    }
  }

  /**
   * One event to the subscribers of an alias: every socket gets the frame for other sessions (encoded once per
   * encoding, uWS pub/sub), except the live subscribers of the session whose command caused the event, which
   * get the frame with its requestId and trace instead. They leave the uWS topic for that one publish; uWS
   * sends a socket's pending published frames before a direct send, so each socket keeps the offset order.
   */
  function publishEvent(alias: string, record: ConsumedRecord, envelope: Envelope): boolean {
    const topic = broadcastTopic(alias)
    const others = eventFrame(record, envelope, alias, topics.othersAudience.get(alias) ?? 'public', ctx.blobLinker)
    const own = ownSubscribers(alias, envelope.clientSessionId)
    if (own === undefined) return publishFrame(app, topic, others)
    for (const ws of own) ws.unsubscribe(withEncoding(topic, ws.getUserData().encoding))
    publishFrame(app, topic, others)
    const ownFrame = eventFrame(record, envelope, alias, 'own', ctx.blobLinker)
    const encoded: Partial<Record<Encoding, string | Uint8Array>> = {}
    for (const ws of own) {
      const s = ws.getUserData()
      if (s.closed) continue
      ws.subscribe(withEncoding(topic, s.encoding))
      const data = (encoded[s.encoding] ??= encodeFrame(ownFrame, s.encoding))
      ws.cork(() => ws.send(data, s.encoding === 'msgpack'))
    }
    return true
  }

  /** Sockets of `sessionId` whose subscription to `alias` is live, or undefined when there are none. */
  function ownSubscribers(alias: string, sessionId: string | undefined): Socket[] | undefined {
    if (sessionId === undefined) return undefined
    const candidates = sockets.bySession.get(sessionId)
    if (candidates === undefined) return undefined
    let own: Socket[] | undefined
    for (const ws of candidates) {
      const s = ws.getUserData()
      if (!s.closed && s.events.get(alias)?.state === 'live') (own ??= []).push(ws)
    }
    return own
  }

  function gap(topic: string, partition: number, from: bigint, to: bigint): void {
    metrics.gaps.inc()
    const frame: ServerFrame = { type: 'gap', topic, partition, from: from.toString(), to: to.toString() }
    if (topics.resultSet.has(topic)) publishFrame(app, ALL_TOPIC, frame)
    for (const alias of topics.eventAliases.get(topic) ?? []) publishFrame(app, broadcastTopic(alias), frame)
  }

  return { dispatch, gap }
}
