// The WebSocket gateway (docs/gateway.md): socket commands become command envelopes on Kafka; results and
// events read from Kafka become socket frames. Stateless: any instance serves any session, because every
// instance reads every partition of the result and event topics and session ids are derived, not stored.
//
// uWebSockets.js rules kept here: a closed ws is never touched (state.closed is checked after every await);
// every HttpResponse gets onAborted before async work; message buffers are decoded or copied before the
// handler returns; publish skips sockets over maxBackpressure, so closeOnBackpressureLimit disconnects them
// and they come back with a resume.
import uWS from 'uWebSockets.js'
import type { HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js'

import { deadlinesTopic } from '../commands/catalog.ts'
import type { CommandSpec, TopicBinding } from '../commands/catalog.ts'
import { channels as coreChannels, publish } from '../core/diagnostics.ts'
import { WeirError, isWeirError } from '../core/errors.ts'
import { createEnvelopeCodec } from '../envelope/codec.ts'
import { createEnvelope, spanFrom } from '../envelope/envelope.ts'
import type { Envelope } from '../envelope/envelope.ts'
import { createAdmin, createPartitionReader, createProducer } from '../kafka/index.ts'
import type { ConsumedRecord, KafkaAdmin, KafkaProducer, PartitionBatch, PartitionReader, TopicPartitionOffset } from '../kafka/index.ts'
import { allowed, createTokenVerifier, newSessionNonce, sessionIdOf, SESSION_NONCE } from './auth.ts'
import type { Identity, TokenVerifier } from './auth.ts'
import { describeCode } from './errors.ts'
import type { WireErrorCode } from './errors.ts'
import { createCommandWriter } from './command-writer.ts'
import type { CommandWriter } from './command-writer.ts'
import { commandId, commandKey, eventFrame, resultFrame } from './frames.ts'
import { createLiveStream } from './live-stream.ts'
import type { LiveStream } from './live-stream.ts'
import { createGatewayMetrics } from './metrics.ts'
import type { GatewayMetrics } from './metrics.ts'
import { resolveGatewayOptions } from './options.ts'
import type { DeadlineRegistrar, GatewayOptions, ResolvedGatewayOptions } from './options.ts'
import {
  BEARER_SUBPROTOCOL_PREFIX,
  PROTOCOL_VERSION,
  SEALING_ALG,
  SUBPROTOCOL,
  closeCodes,
  fromBase64Url,
  encodeFrame,
  parseClientFrame,
  partitionKey,
} from './protocol.ts'
import type { CommandFrame, Encoding, ErrorFrame, FrameOffset, ResultFrame, ServerFrame, SubscribeFrame, TimeoutFrame } from './protocol.ts'
import { createTokenBucket } from './rate-limit.ts'
import type { TokenBucket } from './rate-limit.ts'
import { catchUp } from './replay.ts'
import { createSealer } from './sealing.ts'
import type { Sealer } from './sealing.ts'

export interface Gateway {
  readonly instanceId: string
  /** The port listened on (after start). */
  readonly port: number
  readonly metrics: GatewayMetrics
  /** Connects to Kafka, positions the live stream at the end of every result/event partition, then listens. */
  start(): Promise<number>
  /** Open WebSocket connections. */
  connections(): number
  /**
   * Graceful shutdown: stops accepting, lets commands being produced finish (shutdownGraceMs), closes every
   * socket with 1001 (clients reconnect elsewhere and resume), closes the Kafka clients.
   */
  close(): Promise<void>
}

interface EventStream {
  state: 'catching-up' | 'live'
}

interface SocketState {
  readonly connectionId: number
  subject: string
  roles: readonly string[]
  expiresAt: number | undefined
  readonly sessionId: string
  readonly sessionNonce: string
  readonly encoding: Encoding
  readonly bucket: TokenBucket
  closed: boolean
  results: 'idle' | 'catching-up' | 'live'
  readonly events: Map<string, EventStream>
  /** Events-topic offsets from a resume frame, used by later subscribes. */
  readonly resumeOffsets: Map<string, TopicPartitionOffset>
  drainWaiters: Array<() => void>
  closeReason: string | undefined
  /** Set when the client registered a public key: its results are sealed for this socket alone. */
  readonly sealer: Sealer | undefined
  /** How the upgrade completed: inside uWS's upgrade handler, or after an asynchronous token check. */
  readonly upgrade: 'sync' | 'async'
}

type Socket = WebSocket<SocketState>

const MSGPACK_SUFFIX = '#msgpack'
/** uWS topic every socket joins: gateway-wide notices (live-stream gaps). */
const ALL_TOPIC = 'gateway/all'
/** uWS topic of sockets whose results are live: they get `checkpoint` frames. */
const CHECKPOINT_TOPIC = 'gateway/checkpoint'

const sessionTopic = (sessionId: string) => `session/${sessionId}`
const broadcastTopic = (alias: string) => `socket/${alias}/broadcast`
const withEncoding = (topic: string, encoding: Encoding) => (encoding === 'json' ? topic : `${topic}${MSGPACK_SUFFIX}`)

// Keyed like the command: the deadlines topic is co-partitioned with the commands topic, so the registration
// reaches the task that runs the command and the arbiter there decides result vs timeout.
const deadlinesTopicRegistrar: DeadlineRegistrar = (_command, encoded, binding, key) => [{ topic: deadlinesTopic(binding), key, value: encoded }]

export function createGateway(options: GatewayOptions): Gateway {
  const config: ResolvedGatewayOptions = resolveGatewayOptions(options, deadlinesTopicRegistrar)
  const { catalog, instanceId } = config
  const verifier: TokenVerifier = createTokenVerifier(config.auth)
  const codec = createEnvelopeCodec()

  // Which Kafka topics carry what: results (to sessions) and events (to the aliases bound to them).
  const resultTopics = [...new Set(Object.values(catalog.topics).map((b) => b.results))]
  const eventAliases = new Map<string, string[]>()
  for (const [alias, binding] of Object.entries(catalog.topics)) eventAliases.set(binding.events, [...(eventAliases.get(binding.events) ?? []), alias])
  const resultTopicSet = new Set(resultTopics)
  const liveTopics = [...new Set([...resultTopics, ...eventAliases.keys()])]

  const brokers = { brokers: config.brokers, ...(config.connection === undefined ? {} : { connection: config.connection }) }
  let admin: KafkaAdmin | undefined
  let producer: KafkaProducer | undefined
  let liveReader: PartitionReader | undefined
  let replayReader: PartitionReader | undefined
  let live: LiveStream | undefined
  let writer: CommandWriter | undefined
  const commandTopics = [...new Set(Object.values(catalog.topics).map((b) => b.commands))]
  const commandPartitions = new Map<string, number>()
  let partitionTimer: NodeJS.Timeout | undefined

  const sockets = new Set<Socket>()
  /** Live sockets with sealed results, per session: they get their own encrypted copy (no pub/sub). */
  const sealedSockets = new Map<string, Set<Socket>>()
  const inFlight = new Set<Promise<unknown>>()
  let connectionIds = 0
  let listenSocket: us_listen_socket | undefined
  let port = 0
  let state: 'new' | 'starting' | 'running' | 'draining' | 'closed' = 'new'
  let sweepTimer: NodeJS.Timeout | undefined
  let checkpointTimer: NodeJS.Timeout | undefined
  const metrics = createGatewayMetrics(instanceId, () => live?.lag() ?? new Map(), config.registry)
  const runReplay = createLimiter(config.replayConcurrency)

  const app: TemplatedApp = uWS.App()

  // ---- sending ----

  function send(ws: Socket, s: SocketState, frame: ServerFrame): void {
    if (s.closed) return
    const data = encodeFrame(frame, s.encoding)
    // Corked: sends from async continuations (acks, replays) go out in one syscall per tick, not one each.
    ws.cork(() => ws.send(data, s.encoding === 'msgpack'))
  }

  function sendResult(ws: Socket, s: SocketState, frame: ResultFrame | TimeoutFrame): void {
    send(ws, s, s.sealer === undefined ? frame : s.sealer.seal(frame))
  }

  function sendError(ws: Socket, s: SocketState, code: WireErrorCode, message: string, extra: Partial<ErrorFrame> = {}): void {
    metrics.frameErrors.inc({ code })
    send(ws, s, { type: 'error', code, message, ...extra })
  }

  /** Publishes to JSON and msgpack subscribers of a uWS topic; encodes only for formats someone listens to. */
  function publishFrame(topic: string, frame: ServerFrame): boolean {
    let published = false
    if (app.numSubscribers(topic) > 0) {
      app.publish(topic, encodeFrame(frame, 'json'), false)
      published = true
    }
    const binary = topic + MSGPACK_SUFFIX
    if (app.numSubscribers(binary) > 0) {
      app.publish(binary, encodeFrame(frame, 'msgpack'), true)
      published = true
    }
    return published
  }

  function decodeRecord(record: ConsumedRecord, report: boolean): Envelope | undefined {
    if (record.value === undefined) return undefined
    try {
      return codec.decode(record.value)
    } catch (error) {
      if (report) {
        metrics.recordsRejected.inc()
        publish(coreChannels.envelopeRejected, {
          error: error as WeirError,
          source: { topic: record.topic, partition: record.partition, offset: record.offset },
        })
      }
      return undefined
    }
  }

  // ---- live delivery ----

  function dispatch(batch: PartitionBatch): void {
    const isResults = resultTopicSet.has(batch.topic)
    const aliases = eventAliases.get(batch.topic) ?? []
    for (const record of batch.records) {
      const envelope = decodeRecord(record, true)
      if (envelope === undefined) continue
      if (isResults && envelope.kind === 'result' && envelope.clientSessionId !== undefined) {
        const frame = resultFrame(record, envelope)
        let delivered = publishFrame(sessionTopic(envelope.clientSessionId), frame)
        for (const ws of sealedSockets.get(envelope.clientSessionId) ?? []) {
          sendResult(ws, ws.getUserData(), frame)
          delivered = true
        }
        if (delivered) metrics.resultsDelivered.inc()
      }
      if (envelope.kind === 'event') {
        for (const alias of aliases) {
          if (publishFrame(broadcastTopic(alias), eventFrame(record, envelope, alias))) metrics.eventsPublished.inc()
        }
      }
    }
  }

  function liveGap(topic: string, partition: number, from: bigint, to: bigint): void {
    metrics.gaps.inc()
    const frame: ServerFrame = { type: 'gap', topic, partition, from: from.toString(), to: to.toString() }
    if (resultTopicSet.has(topic)) publishFrame(ALL_TOPIC, frame)
    for (const alias of eventAliases.get(topic) ?? []) publishFrame(broadcastTopic(alias), frame)
  }

  function reportError(error: unknown, where: string): void {
    publish(coreChannels.gatewayError, { instanceId, where, error })
  }

  // ---- streams of one socket: results of its session, events of its subscriptions ----

  function positionsFrom(topics: readonly string[], requested: readonly TopicPartitionOffset[]): FrameOffset[] {
    const wanted = new Map(requested.map((p) => [partitionKey(p.topic, p.partition), p.offset]))
    return (live as LiveStream).positions(topics).map((p) => {
      const asked = wanted.get(partitionKey(p.topic, p.partition))
      return asked !== undefined && asked > BigInt(p.offset) ? { ...p, offset: asked.toString() } : p
    })
  }

  function startResults(ws: Socket, s: SocketState, from: readonly TopicPartitionOffset[]): void {
    const goLive = (replayed: number) => {
      // Checkpoints only after the switch: during a replay they would claim positions not delivered yet.
      ws.subscribe(withEncoding(CHECKPOINT_TOPIC, s.encoding))
      if (s.sealer === undefined) ws.subscribe(withEncoding(sessionTopic(s.sessionId), s.encoding))
      else {
        const set = sealedSockets.get(s.sessionId) ?? new Set()
        set.add(ws)
        sealedSockets.set(s.sessionId, set)
      }
      s.results = 'live'
      send(ws, s, { type: 'resumed', positions: positionsFrom(resultTopics, from), replayed })
    }
    if (from.length === 0) {
      goLive(0)
      return
    }
    s.results = 'catching-up'
    replayStream(ws, s, 'results', from, {
      deliver(record) {
        const envelope = decodeRecord(record, false)
        if (envelope?.kind !== 'result' || envelope.clientSessionId !== s.sessionId) return false
        sendResult(ws, s, resultFrame(record, envelope))
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
        const envelope = decodeRecord(record, false)
        if (envelope?.kind !== 'event') return false
        send(ws, s, eventFrame(record, envelope, alias))
        return true
      },
      // Unsubscribed (or re-subscribed) while catching up.
      cancelled: () => s.events.get(alias) !== stream,
      goLive,
    })
  }

  function replayStream(
    ws: Socket,
    s: SocketState,
    stream: string,
    from: readonly TopicPartitionOffset[],
    handlers: { deliver(record: ConsumedRecord): boolean; cancelled(): boolean; goLive(replayed: number): void },
  ): void {
    const started = performance.now()
    let replayed = 0
    const run = runReplay(() =>
      catchUp({
        reader: replayReader as PartitionReader,
        live: live as LiveStream,
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
        cancelled: () => s.closed || state === 'closed' || handlers.cancelled(),
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
        sendError(ws, s, 'WEIR_ERR_KAFKA', `replay of ${stream} failed: ${(error as Error).message}; reconnect to resume`)
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

  // ---- frames from the client ----

  function onMessage(ws: Socket, data: ArrayBuffer, isBinary: boolean): void {
    const s = ws.getUserData()
    if (s.closed) return
    try {
      handleMessage(ws, s, data, isBinary)
    } catch (error) {
      // A defect, not bad input (bad input gets coded error frames): reported, and the connection goes on.
      reportError(error, 'message handler')
      sendError(ws, s, 'WEIR_ERR_PROCESSING', 'the gateway failed to handle this frame')
    }
  }

  function handleMessage(ws: Socket, s: SocketState, data: ArrayBuffer, isBinary: boolean): void {
    const wait = s.bucket.take(Date.now())
    if (wait > 0) {
      sendError(ws, s, 'WEIR_ERR_RATE_LIMITED', `rate limit of ${config.rateLimit.ratePerSecond} frames/s exceeded`, { details: { retryAfterMs: wait } })
      return
    }
    // Decoded synchronously: `data` is neutered when this handler returns. msgpack bin values may point into
    // the buffer they came from, so binary frames are copied first.
    const bytes = isBinary && data.byteLength <= config.maxFrameBytes ? new Uint8Array(data.slice(0)) : new Uint8Array(data)
    const parsed = parseClientFrame(bytes, isBinary, config.maxFrameBytes)
    if (!parsed.ok) {
      sendError(ws, s, parsed.code, parsed.message, {
        ...(parsed.requestId === undefined ? {} : { requestId: parsed.requestId }),
        ...(parsed.violations === undefined ? {} : { details: { violations: parsed.violations } }),
      })
      return
    }
    const frame = parsed.frame
    metrics.framesReceived.inc({ type: frame.type })
    switch (frame.type) {
      case 'command':
        onCommand(ws, s, frame)
        return
      case 'subscribe':
        onSubscribe(ws, s, frame)
        return
      case 'unsubscribe': {
        if (catalog.topics[frame.topic] === undefined) {
          sendError(ws, s, 'WEIR_ERR_UNKNOWN_TOPIC', `no topic alias ${frame.topic}`)
          return
        }
        s.events.delete(frame.topic)
        ws.unsubscribe(withEncoding(broadcastTopic(frame.topic), s.encoding))
        send(ws, s, { type: 'unsubscribed', topic: frame.topic })
        return
      }
      case 'resume':
        onResume(ws, s, frame.offsets)
        return
      case 'auth':
        onAuth(ws, s, frame.token)
        return
    }
  }

  function toPositions(offsets: readonly FrameOffset[]): TopicPartitionOffset[] {
    return offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: BigInt(o.offset) }))
  }

  function onResume(ws: Socket, s: SocketState, offsets: readonly FrameOffset[]): void {
    if (s.results !== 'idle') {
      sendError(ws, s, 'WEIR_ERR_FRAME_INVALID', 'resume must be the first frame of a connection that carries results (send it before any command)')
      return
    }
    const results: TopicPartitionOffset[] = []
    const unknown: string[] = []
    for (const position of toPositions(offsets)) {
      const known = (live as LiveStream).position(position.topic, position.partition) !== undefined
      if (known && resultTopicSet.has(position.topic)) results.push(position)
      else if (known && eventAliases.has(position.topic)) s.resumeOffsets.set(partitionKey(position.topic, position.partition), position)
      else unknown.push(`${position.topic}[${position.partition}]`)
    }
    if (unknown.length > 0) {
      sendError(ws, s, 'WEIR_ERR_UNKNOWN_TOPIC', `not a result or event partition of this gateway: ${unknown.slice(0, 10).join(', ')}`, {
        details: { partitions: unknown },
      })
    }
    startResults(ws, s, results)
  }

  function onSubscribe(ws: Socket, s: SocketState, frame: SubscribeFrame): void {
    const binding = catalog.topics[frame.topic]
    if (binding === undefined) {
      sendError(ws, s, 'WEIR_ERR_UNKNOWN_TOPIC', `no topic alias ${frame.topic}`)
      return
    }
    const current = s.events.get(frame.topic)
    if (current?.state === 'live') {
      send(ws, s, { type: 'subscribed', topic: frame.topic, eventsTopic: binding.events, positions: positionsFrom([binding.events], []), replayed: 0 })
      return
    }
    if (current !== undefined) return // catching up: its `subscribed` frame follows
    const requested = frame.offsets === undefined ? undefined : toPositions(frame.offsets)
    const from = (requested ?? [...s.resumeOffsets.values()]).filter(
      (p) => p.topic === binding.events && (live as LiveStream).position(p.topic, p.partition) !== undefined,
    )
    startEvents(ws, s, frame.topic, binding, from)
  }

  function onAuth(ws: Socket, s: SocketState, token: string): void {
    verifier.verify(token).then(
      (identity) => {
        if (s.closed) return
        if (identity.subject !== s.subject) {
          sendError(ws, s, 'WEIR_ERR_FORBIDDEN', 'a refreshed token must be for the same subject; open a new connection for another subject')
          return
        }
        s.roles = identity.roles
        s.expiresAt = identity.expiresAt
        send(ws, s, { type: 'authenticated', subject: identity.subject, ...(identity.expiresAt === undefined ? {} : { expiresAt: identity.expiresAt }) })
      },
      (error: unknown) => {
        if (s.closed) return
        const code = isWeirError(error) ? error.code : 'WEIR_ERR_UNAUTHENTICATED'
        sendError(ws, s, code, `token refresh rejected: ${(error as Error).message}`)
      },
    )
  }

  function onCommand(ws: Socket, s: SocketState, frame: CommandFrame): void {
    const started = performance.now()
    const reject = (code: WireErrorCode, message: string, details?: Record<string, unknown>) => {
      metrics.commands.inc({ outcome: 'rejected' })
      publish(coreChannels.gatewayCommand, { instanceId, requestId: frame.requestId, path: frame.path, sessionId: s.sessionId, outcome: 'rejected', code })
      sendError(ws, s, code, message, { requestId: frame.requestId, ...(details === undefined ? {} : { details }) })
    }
    if (state !== 'running') return reject('WEIR_ERR_CLOSED', 'the gateway is shutting down; reconnect and send again')
    const spec = catalog.find(frame.path)
    if (spec === undefined) return reject('WEIR_ERR_UNKNOWN_COMMAND', `no command ${frame.path}`)
    if (!allowed(s, spec.roles)) return reject('WEIR_ERR_FORBIDDEN', `${frame.path} needs one of the roles ${(spec.roles ?? []).join(', ')}`)
    const check = catalog.check(spec, frame.payload)
    if (!check.ok) return reject('WEIR_ERR_SCHEMA_VIOLATION', `payload of ${frame.path} violates its schema`, { violations: check.violations })
    let records
    let envelope: Envelope
    try {
      ;({ envelope, records } = commandRecords(s, spec, frame))
    } catch (error) {
      const code = isWeirError(error) ? error.code : 'WEIR_ERR_ENVELOPE_INVALID'
      return reject(code, (error as Error).message)
    }
    // A client that sends a command without a resume first gets results from now on.
    if (s.results === 'idle') startResults(ws, s, [])
    const produced = (writer as CommandWriter).write(records).then(
      (written) => {
        const elapsed = performance.now() - started
        metrics.produceSeconds.observe(elapsed / 1000)
        metrics.commands.inc({ outcome: 'accepted' })
        publish(coreChannels.gatewayCommand, { instanceId, requestId: frame.requestId, path: frame.path, sessionId: s.sessionId, outcome: 'accepted', durationMs: elapsed })
        if (s.closed) return
        send(ws, s, {
          type: 'ack',
          requestId: frame.requestId,
          topic: written.topic,
          partition: written.partition,
          offset: written.offset.toString(),
          ...(envelope.deadline === undefined ? {} : { deadline: envelope.deadline }),
        })
      },
      (error: unknown) => {
        metrics.commands.inc({ outcome: 'failed' })
        const code = isWeirError(error) ? error.code : 'WEIR_ERR_KAFKA'
        publish(coreChannels.gatewayCommand, { instanceId, requestId: frame.requestId, path: frame.path, sessionId: s.sessionId, outcome: 'failed', code, error })
        if (s.closed) return
        // Safe to send again with the same requestId: the envelope id is the same, the worker dedupes it.
        sendError(ws, s, code, `the command could not be written to Kafka: ${(error as Error).message}`, { requestId: frame.requestId })
      },
    )
    inFlight.add(produced)
    void produced.finally(() => inFlight.delete(produced))
  }

  function commandRecords(s: SocketState, spec: CommandSpec, frame: CommandFrame) {
    const binding = catalog.topicOf(spec)
    const ttlMs = Math.min(frame.ttlMs ?? spec.defaultTtlMs ?? config.defaultTtlMs, spec.maxTtlMs ?? config.maxTtlMs)
    const envelope = createEnvelope({
      kind: 'command',
      id: commandId(s.sessionId, frame.requestId),
      requestId: frame.requestId,
      clientSessionId: s.sessionId,
      topicAlias: spec.topicAlias,
      contextPath: spec.contextPath,
      alias: spec.alias,
      payload: frame.payload,
      ttlMs,
      // A child span of the client's traceparent when it sent a valid one, else a new trace.
      trace: spanFrom(frame.traceparent),
    })
    const encoded = codec.encode(envelope)
    const key = commandKey(frame.payload, spec.keyField, frame.requestId)
    const records = [
      { topic: binding.commands, key, value: encoded, headers: { 'weir.subject': s.subject } },
      ...(config.deadlines === 'off' ? [] : config.deadlines(envelope, encoded, binding, key)),
    ]
    return { envelope, records }
  }

  // ---- connections ----

  function rejectUpgrade(res: HttpResponse, status: string, code: WireErrorCode, message: string): void {
    metrics.upgradesRejected.inc({ code })
    publish(coreChannels.gatewayConnection, { instanceId, event: 'rejected', code: Number.parseInt(status, 10), reason: code })
    res.cork(() => {
      res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify({ code, message }))
    })
  }

  app.ws<SocketState>(config.path, {
    maxPayloadLength: config.maxPayloadLength,
    maxBackpressure: config.maxBackpressure,
    closeOnBackpressureLimit: true,
    idleTimeout: config.idleTimeoutSec,
    sendPingsAutomatically: true,

    upgrade(res, req, context) {
      // Everything from req is read now: it is invalid after this handler returns.
      const key = req.getHeader('sec-websocket-key')
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
      if (state !== 'running') {
        rejectUpgrade(res, '503 Service Unavailable', 'WEIR_ERR_CLOSED', 'the gateway is not accepting connections')
        return
      }
      const bearer = offered.find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX))
      const token = /^Bearer\s+(.+)$/i.exec(authorization)?.[1] ?? bearer?.slice(BEARER_SUBPROTOCOL_PREFIX.length) ?? query.get('access_token') ?? ''
      const nonce = query.get('session') ?? undefined
      const encoding = query.get('encoding') ?? 'json'
      const clientKey = query.get('key') ?? undefined
      const problems: string[] = []
      if (clientKey !== undefined && !/^[A-Za-z0-9_-]{87}$/.test(clientKey)) problems.push('key must be a base64url uncompressed P-256 public key (65 bytes)')
      if (nonce !== undefined && !SESSION_NONCE.test(nonce)) problems.push('session must be 16 to 128 characters of [A-Za-z0-9_-]')
      if (encoding !== 'json' && encoding !== 'msgpack') problems.push('encoding must be json or msgpack')
      if (offered.length > 0 && !offered.includes(SUBPROTOCOL)) problems.push(`offered subprotocols must include ${SUBPROTOCOL}`)
      if (problems.length > 0) {
        rejectUpgrade(res, '400 Bad Request', 'WEIR_ERR_HANDSHAKE_INVALID', problems.join('; '))
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
          if (state !== 'running') {
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
          rejectUpgrade(res, '400 Bad Request', 'WEIR_ERR_HANDSHAKE_INVALID', (error as Error).message)
          return
        }
        const socketState: SocketState = {
          connectionId: ++connectionIds,
          subject: identity.subject,
          roles: identity.roles,
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
        const upgrade = () => res.upgrade(socketState, key, offered.length > 0 ? SUBPROTOCOL : '', extensions, context)
        if (later) res.cork(upgrade)
        else upgrade()
      }
    },

    open(ws) {
      const s = ws.getUserData()
      sockets.add(ws)
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
    },

    message: onMessage,

    drain(ws) {
      const s = ws.getUserData()
      if (!s.closed && ws.getBufferedAmount() < config.maxBackpressure / 2) releaseDrainWaiters(s)
    },

    dropped(ws) {
      const s = ws.getUserData()
      if (s.closeReason === undefined) {
        s.closeReason = 'backpressure'
        metrics.backpressureCloses.inc()
      }
    },

    close(ws, code) {
      const s = ws.getUserData()
      s.closed = true
      sockets.delete(ws)
      const sealed = sealedSockets.get(s.sessionId)
      if (sealed?.delete(ws) && sealed.size === 0) sealedSockets.delete(s.sessionId)
      s.events.clear()
      releaseDrainWaiters(s)
      metrics.connections.dec()
      publish(coreChannels.gatewayConnection, {
        instanceId,
        event: 'close',
        subject: s.subject,
        sessionId: s.sessionId,
        code,
        ...(s.closeReason === undefined ? {} : { reason: s.closeReason }),
      })
    },
  })

  // ---- HTTP: health, readiness, metrics ----

  app.get('/health', (res) => {
    const ok = state === 'running' || state === 'draining' || state === 'starting'
    res.writeStatus(ok ? '200 OK' : '503 Service Unavailable').writeHeader('content-type', 'application/json').end(JSON.stringify({ status: state }))
  })
  app.get('/ready', (res) => {
    const fresh = live !== undefined && Date.now() - live.lastFetchAt() < Math.max(10_000, config.fetchMaxWaitMs * 10)
    const ready = state === 'running' && fresh
    res
      .writeStatus(ready ? '200 OK' : '503 Service Unavailable')
      .writeHeader('content-type', 'application/json')
      .end(JSON.stringify({ ready, state, connections: sockets.size, liveStreamFresh: fresh }))
  })
  app.get('/metrics', (res) => {
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    metrics.registry.metrics().then(
      (text) => {
        if (aborted) return
        res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', metrics.registry.contentType).end(text))
      },
      (error: unknown) => {
        reportError(error, 'metrics')
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end())
      },
    )
  })
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end()
  })

  function sweepExpiredTokens(): void {
    const now = Date.now()
    const tolerance = (config.auth.clockToleranceSec ?? 5) * 1000
    for (const ws of sockets) {
      const s = ws.getUserData()
      if (s.closed || s.expiresAt === undefined || now <= s.expiresAt + tolerance) continue
      sendError(ws, s, 'WEIR_ERR_TOKEN_EXPIRED', 'the token expired; reconnect with a fresh token (refresh earlier with an auth frame)')
      s.closeReason = 'token expired'
      ws.end(closeCodes.tokenExpired, 'token expired')
    }
  }

  /** Partition counts of the command topics: the command writer attributes offsets with them. */
  async function refreshCommandPartitions(): Promise<void> {
    for (const topic of commandTopics) commandPartitions.set(topic, await (admin as KafkaAdmin).partitionCount(topic))
  }

  async function closeKafka(): Promise<void> {
    await live?.stop().catch((error: unknown) => reportError(error, 'close live stream'))
    await Promise.allSettled([producer?.close(), liveReader?.close(), replayReader?.close(), admin?.close()])
  }

  return {
    instanceId,
    get port() {
      return port
    },
    metrics,
    connections: () => sockets.size,

    async start() {
      if (state !== 'new') throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'start() may be called once')
      state = 'starting'
      try {
        admin = createAdmin({ ...brokers, clientId: `${config.clientId}-admin` })
        producer = createProducer({ ...brokers, clientId: `${config.clientId}-producer`, idempotent: true })
        liveReader = createPartitionReader({ ...brokers, clientId: `${config.clientId}-live`, isolation: 'read_committed', maxWaitMs: config.fetchMaxWaitMs })
        replayReader = createPartitionReader({ ...brokers, clientId: `${config.clientId}-replay`, isolation: 'read_committed', maxWaitMs: 50 })
        live = createLiveStream({
          reader: liveReader,
          admin,
          topics: liveTopics,
          maxWaitMs: config.fetchMaxWaitMs,
          metadataRefreshMs: config.metadataRefreshMs,
          dispatch,
          gap: liveGap,
          error: reportError,
        })
        await live.start()
        writer = createCommandWriter({ producer, partitionCount: (topic) => commandPartitions.get(topic), lingerMs: config.commandLingerMs })
        await refreshCommandPartitions()
        port = await new Promise<number>((resolve, reject) => {
          app.listen(config.host, config.port, (socket) => {
            if (socket === false) reject(new WeirError('WEIR_ERR_INVALID_OPTIONS', `cannot listen on ${config.host}:${config.port}`))
            else {
              listenSocket = socket
              resolve(uWS.us_socket_local_port(socket))
            }
          })
        })
      } catch (error) {
        state = 'closed'
        await closeKafka()
        app.close()
        throw error
      }
      state = 'running'
      sweepTimer = setInterval(sweepExpiredTokens, 1000)
      sweepTimer.unref()
      // Runs between live batches (never inside one), so the positions match exactly what was published.
      checkpointTimer = setInterval(() => {
        if (live !== undefined) publishFrame(CHECKPOINT_TOPIC, { type: 'checkpoint', positions: live.positions(resultTopics) })
      }, config.checkpointIntervalMs)
      checkpointTimer.unref()
      partitionTimer = setInterval(() => {
        refreshCommandPartitions().catch((error: unknown) => reportError(error, 'partition counts'))
      }, config.metadataRefreshMs)
      partitionTimer.unref()
      return port
    },

    async close() {
      if (state === 'closed' || state === 'draining') return
      const wasRunning = state === 'running'
      state = 'draining'
      if (listenSocket !== undefined) uWS.us_listen_socket_close(listenSocket)
      listenSocket = undefined
      clearInterval(sweepTimer)
      clearInterval(checkpointTimer)
      clearInterval(partitionTimer)
      if (wasRunning && inFlight.size > 0) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          Promise.allSettled([...inFlight]),
          new Promise((resolve) => {
            timer = setTimeout(resolve, config.shutdownGraceMs)
          }),
        ])
        clearTimeout(timer)
      }
      for (const ws of [...sockets]) {
        const s = ws.getUserData()
        if (s.closed) continue
        s.closeReason = 'shutdown'
        ws.end(closeCodes.goingAway, 'gateway shutting down')
      }
      state = 'closed'
      await closeKafka()
      app.close()
    },
  }
}

/** Runs at most `max` tasks at once; the others wait in order. */
function createLimiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0
  const queue: Array<() => void> = []
  return async (task) => {
    if (active >= max) await new Promise<void>((resolve) => queue.push(resolve))
    else active++
    try {
      return await task()
    } finally {
      const next = queue.shift()
      // The slot passes straight to the next waiter, so no newcomer can slip in between.
      if (next === undefined) active--
      else next()
    }
  }
}
