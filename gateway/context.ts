// What the gateway's parts share: the resolved options, which Kafka topics carry what, the uWS app, the open
// sockets, and the Kafka clients once started. The composition root (server.ts) makes one and hands it to
// each part; only server.ts changes `state` and the Kafka clients.
import uWS from 'uWebSockets.js'
import type { TemplatedApp } from 'uWebSockets.js'

import type { CommandCatalog } from '../commands/catalog.ts'
import { channels as coreChannels, publish } from '../core/diagnostics.ts'
import type { WeirError } from '../core/errors.ts'
import { createEnvelopeCodec } from '../envelope/codec.ts'
import type { EnvelopeCodec } from '../envelope/codec.ts'
import type { Envelope } from '../envelope/envelope.ts'
import type { ConsumedRecord, PartitionReader } from '../kafka/index.ts'
import { createTokenVerifier } from './auth.ts'
import type { TokenVerifier } from './auth.ts'
import type { CommandWriter } from './command-writer.ts'
import type { WireErrorCode } from './errors.ts'
import { blobLink } from './blob-links.ts'
import type { BlobLinker, EventAudience } from './frames.ts'
import type { LiveStream } from './live-stream.ts'
import { createGatewayMetrics } from './metrics.ts'
import type { GatewayMetrics } from './metrics.ts'
import type { ResolvedGatewayOptions } from './options.ts'
import type { ErrorFrame } from './protocol.ts'
import { send } from './sender.ts'
import { createSocketRegistry } from './socket-state.ts'
import type { Socket, SocketRegistry, SocketState } from './socket-state.ts'

export type GatewayState = 'new' | 'starting' | 'running' | 'draining' | 'closed'

/** Which Kafka topics carry what: results (to sessions) and events (to the aliases bound to them). */
export interface GatewayTopics {
  readonly results: readonly string[]
  readonly resultSet: ReadonlySet<string>
  /** Topic aliases per events topic. */
  readonly eventAliases: ReadonlyMap<string, readonly string[]>
  /** What event frames to sockets of other sessions carry, per topic alias. */
  readonly othersAudience: ReadonlyMap<string, EventAudience>
  /** Every topic the live stream reads. */
  readonly live: readonly string[]
  readonly commands: readonly string[]
}

export interface GatewayContext {
  readonly config: ResolvedGatewayOptions
  readonly catalog: CommandCatalog
  readonly instanceId: string
  readonly metrics: GatewayMetrics
  readonly codec: EnvelopeCodec
  readonly verifier: TokenVerifier
  readonly topics: GatewayTopics
  readonly app: TemplatedApp
  readonly sockets: SocketRegistry
  /** Download links for payloads by reference (undefined without a blob store: frames carry no link). */
  readonly blobLinker: BlobLinker
  state: GatewayState
  live: LiveStream | undefined
  replayReader: PartitionReader | undefined
  writer: CommandWriter | undefined
  sendError(ws: Socket, s: SocketState, code: WireErrorCode, message: string, extra?: Partial<ErrorFrame>): void
  /** The envelope of a record, or undefined for a tombstone or bytes that are no envelope (reported when `report`). */
  decodeRecord(record: ConsumedRecord, report: boolean): Envelope | undefined
  reportError(error: unknown, where: string): void
}

export function gatewayTopics(catalog: CommandCatalog): GatewayTopics {
  const results = [...new Set(Object.values(catalog.topics).map((b) => b.results))]
  const eventAliases = new Map<string, string[]>()
  for (const [alias, binding] of Object.entries(catalog.topics)) eventAliases.set(binding.events, [...(eventAliases.get(binding.events) ?? []), alias])
  const othersAudience = new Map<string, EventAudience>(
    Object.keys(catalog.topics).map((alias) => [alias, catalog.eventStream(alias)?.internal === true ? 'internal' : 'public']),
  )
  return {
    results,
    resultSet: new Set(results),
    eventAliases,
    othersAudience,
    live: [...new Set([...results, ...eventAliases.keys()])],
    commands: [...new Set(Object.values(catalog.topics).map((b) => b.commands))],
  }
}

export function createGatewayContext(config: ResolvedGatewayOptions): GatewayContext {
  const { catalog, instanceId } = config
  const ctx: GatewayContext = {
    config,
    catalog,
    instanceId,
    metrics: createGatewayMetrics(instanceId, () => ctx.live?.lag() ?? new Map(), config.registry),
    codec: createEnvelopeCodec(),
    verifier: createTokenVerifier(config.auth),
    topics: gatewayTopics(catalog),
    app: uWS.App(),
    sockets: createSocketRegistry(),
    blobLinker: config.blobs === undefined ? undefined : (ref) => blobLink(config.blobs!, ref),
    state: 'new',
    live: undefined,
    replayReader: undefined,
    writer: undefined,
    sendError(ws, s, code, message, extra = {}) {
      ctx.metrics.frameErrors.inc({ code })
      send(ws, s, { type: 'error', code, message, ...extra })
    },
    decodeRecord(record, report) {
      if (record.value === undefined) return undefined
      try {
        return ctx.codec.decode(record.value)
      } catch (error) {
        if (report) {
          ctx.metrics.recordsRejected.inc()
          publish(coreChannels.envelopeRejected, {
            error: error as WeirError,
            source: { topic: record.topic, partition: record.partition, offset: record.offset },
          })
        }
        return undefined
      }
    },
    reportError(error, where) {
      publish(coreChannels.gatewayError, { instanceId, where, error })
    },
  }
  return ctx
}
