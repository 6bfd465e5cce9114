// The WebSocket gateway (docs/gateway.md): socket commands become command envelopes on Kafka; results and
// events read from Kafka become socket frames. Stateless: any instance serves any session, because every
// instance reads every partition of the result and event topics and session ids are derived, not stored.
// This file composes the parts (one concern each, docs/gateway.md "Files") and owns the Kafka clients' lifecycle.
//
// uWebSockets.js rules every part keeps: a closed ws is never touched (s.closed is checked after every await);
// every HttpResponse gets onAborted before async work; message buffers are decoded or copied before the
// handler returns; publish skips sockets over maxBackpressure, so closeOnBackpressureLimit disconnects them
// and they come back with a resume.
import uWS from 'uWebSockets.js'
import type { us_listen_socket } from 'uWebSockets.js'

import { deadlinesTopic } from '../commands/catalog.ts'
import { WeirError } from '../core/errors.ts'
import { createAdmin, createPartitionReader, createProducer } from '../kafka/index.ts'
import type { KafkaAdmin, KafkaProducer, PartitionReader } from '../kafka/index.ts'
import { createCommandWriter } from './command-writer.ts'
import { createCommands } from './commands.ts'
import { createConnections } from './connections.ts'
import { createGatewayContext } from './context.ts'
import { createFanOut } from './fan-out.ts'
import { createMessageHandler } from './frame-handlers.ts'
import { registerBlobRoutes } from './blob-routes.ts'
import { registerHttpRoutes } from './http.ts'
import { createLiveStream } from './live-stream.ts'
import type { GatewayMetrics } from './metrics.ts'
import { resolveGatewayOptions } from './options.ts'
import type { DeadlineRegistrar, GatewayOptions } from './options.ts'
import { CHECKPOINT_TOPIC, publishFrame } from './sender.ts'
import { createSession } from './session.ts'
import type { SocketState } from './socket-state.ts'
import { createHandshake } from './upgrade.ts'

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

// Keyed like the command: the deadlines topic is co-partitioned with the commands topic, so the registration
// reaches the task that runs the command and the arbiter there decides result vs timeout.
const deadlinesTopicRegistrar: DeadlineRegistrar = (_command, encoded, binding, key) => [{ topic: deadlinesTopic(binding), key, value: encoded }]

export function createGateway(options: GatewayOptions): Gateway {
  const config = resolveGatewayOptions(options, deadlinesTopicRegistrar)
  const ctx = createGatewayContext(config)
  const { app, metrics, topics, instanceId } = ctx

  // The parts, each one concern: streams of a socket, commands, frames in, connections, live fan-out, handshake.
  const session = createSession(ctx)
  const commands = createCommands(ctx, session)
  const connections = createConnections(ctx, session)
  const fanOut = createFanOut(ctx)
  const handshake = createHandshake(ctx)

  app.ws<SocketState>(config.path, {
    maxPayloadLength: config.maxPayloadLength,
    maxBackpressure: config.maxBackpressure,
    closeOnBackpressureLimit: true,
    idleTimeout: config.idleTimeoutSec,
    sendPingsAutomatically: true,
    upgrade: handshake.upgrade,
    open: connections.open,
    message: createMessageHandler(ctx, session, commands),
    drain: connections.drain,
    dropped: connections.dropped,
    close: connections.close,
  })
  app.get(config.path, handshake.notAnUpgrade)
  registerBlobRoutes(ctx)
  registerHttpRoutes(ctx)

  // ---- Kafka clients and timers: made at start, closed at close ----

  const brokers = { brokers: config.brokers, ...(config.connection === undefined ? {} : { connection: config.connection }) }
  let admin: KafkaAdmin | undefined
  let producer: KafkaProducer | undefined
  let liveReader: PartitionReader | undefined
  const commandPartitions = new Map<string, number>()
  let listenSocket: us_listen_socket | undefined
  let port = 0
  let sweepTimer: NodeJS.Timeout | undefined
  let checkpointTimer: NodeJS.Timeout | undefined
  let partitionTimer: NodeJS.Timeout | undefined

  /** Partition counts of the command topics: the command writer attributes offsets with them. */
  async function refreshCommandPartitions(): Promise<void> {
    for (const topic of topics.commands) commandPartitions.set(topic, await (admin as KafkaAdmin).partitionCount(topic))
  }

  async function closeKafka(): Promise<void> {
    await ctx.live?.stop().catch((error: unknown) => ctx.reportError(error, 'close live stream'))
    await Promise.allSettled([producer?.close(), liveReader?.close(), ctx.replayReader?.close(), admin?.close()])
  }

  return {
    instanceId,
    get port() {
      return port
    },
    metrics,
    connections: () => ctx.sockets.all.size,

    async start() {
      if (ctx.state !== 'new') throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'start() may be called once')
      ctx.state = 'starting'
      try {
        admin = createAdmin({ ...brokers, clientId: `${config.clientId}-admin` })
        producer = createProducer({ ...brokers, clientId: `${config.clientId}-producer`, idempotent: true, deliveryTimeoutMs: config.commandTimeoutMs })
        liveReader = createPartitionReader({ ...brokers, clientId: `${config.clientId}-live`, isolation: 'read_committed', maxWaitMs: config.fetchMaxWaitMs })
        ctx.replayReader = createPartitionReader({ ...brokers, clientId: `${config.clientId}-replay`, isolation: 'read_committed', maxWaitMs: 50 })
        ctx.live = createLiveStream({
          reader: liveReader,
          admin,
          topics: topics.live,
          maxWaitMs: config.fetchMaxWaitMs,
          metadataRefreshMs: config.metadataRefreshMs,
          dispatch: fanOut.dispatch,
          gap: fanOut.gap,
          error: ctx.reportError,
        })
        await ctx.live.start()
        ctx.writer = createCommandWriter({ producer, partitionCount: (topic) => commandPartitions.get(topic), lingerMs: config.commandLingerMs })
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
        ctx.state = 'closed'
        await closeKafka()
        app.close()
        throw error
      }
      ctx.state = 'running'
      sweepTimer = setInterval(connections.sweepExpiredTokens, 1000)
      sweepTimer.unref()
      // Runs between live batches (never inside one), so the positions match exactly what was published.
      checkpointTimer = setInterval(() => {
        if (ctx.live !== undefined) publishFrame(app, CHECKPOINT_TOPIC, { type: 'checkpoint', positions: ctx.live.positions(topics.results) })
      }, config.checkpointIntervalMs)
      checkpointTimer.unref()
      partitionTimer = setInterval(() => {
        refreshCommandPartitions().catch((error: unknown) => ctx.reportError(error, 'partition counts'))
      }, config.metadataRefreshMs)
      partitionTimer.unref()
      return port
    },

    async close() {
      if (ctx.state === 'closed' || ctx.state === 'draining') return
      const wasRunning = ctx.state === 'running'
      ctx.state = 'draining'
      if (listenSocket !== undefined) uWS.us_listen_socket_close(listenSocket)
      listenSocket = undefined
      clearInterval(sweepTimer)
      clearInterval(checkpointTimer)
      clearInterval(partitionTimer)
      if (wasRunning && commands.inFlight.size > 0) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          Promise.allSettled([...commands.inFlight]),
          new Promise((resolve) => {
            timer = setTimeout(resolve, config.shutdownGraceMs)
          }),
        ])
        clearTimeout(timer)
      }
      connections.closeAll()
      ctx.state = 'closed'
      await closeKafka()
      app.close()
    },
  }
}
