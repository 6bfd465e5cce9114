// Options of createGateway: types, defaults and validation in one place (every violation reported at once).
import type { Registry } from 'prom-client'

import { invalidOptions } from '../core/errors.ts'
import type { CommandCatalog, TopicBinding } from '../commands/catalog.ts'
import type { Envelope } from '../envelope/envelope.ts'
import type { KafkaConnection, OutgoingRecord } from '../kafka/index.ts'
import { validateAuthOptions } from './auth.ts'
import type { AuthOptions } from './auth.ts'
import { resolveBlobOptions } from './blob-links.ts'
import type { GatewayBlobOptions, ResolvedBlobOptions } from './blob-links.ts'

/**
 * Registers a command's deadline with the TTL processor: the records it returns are produced together with
 * the command (same send). The default, 'deadlines-topic', writes the command envelope to the binding's
 * deadlines topic keyed like the command (`key`: its keyField, else its requestId), so the registration lands
 * on the command's partition number and the command service decides result vs timeout in the command's own
 * task (processors/deadline-arbiter.ts); 'off' registers nothing (no timeout outcome unless something else
 * produces one).
 */
export type DeadlineRegistrar = (command: Envelope, encoded: Buffer, binding: TopicBinding, key: string) => readonly OutgoingRecord[]

export interface RateLimitOptions {
  /** Frames per second refilled into the bucket (default 200). */
  ratePerSecond?: number
  /** Bucket size: frames a connection may send at once (default 2 x ratePerSecond). */
  burst?: number
}

export interface GatewayOptions {
  catalog: CommandCatalog
  brokers: readonly string[]
  /** TLS, SASL and compression of the gateway's Kafka clients (kafka/connection.ts). */
  connection?: KafkaConnection
  auth: AuthOptions
  /** Secret shared by every gateway instance (>= 32 bytes): session ids are derived from it. */
  sessionSecret: string | Uint8Array
  host?: string
  /** 0 (default) picks a free port; `gateway.port` tells which. */
  port?: number
  /** WebSocket route (default '/ws'). */
  path?: string
  /** Name of this instance in metrics and diagnostics (default: random). */
  instanceId?: string
  clientId?: string
  /** Largest frame accepted; larger ones get a WEIR_ERR_FRAME_TOO_LARGE error frame (default 64 KiB). */
  maxFrameBytes?: number
  /** Large payloads: HTTP upload and download links over a blob store (docs/payloads.md); off without it. */
  blobs?: GatewayBlobOptions
  /** Transport limit: a frame over it closes the connection (uWS maxPayloadLength; default 4 x maxFrameBytes). */
  maxPayloadLength?: number
  /** Bytes buffered for a slow socket before it is disconnected (default 1 MiB); it then resumes by offsets. */
  maxBackpressure?: number
  /** Seconds without traffic before a socket is closed (default 120; pings are sent automatically). */
  idleTimeoutSec?: number
  rateLimit?: RateLimitOptions
  /** TTL when neither the client nor the catalog gives one (default 30 s). */
  defaultTtlMs?: number
  /** Largest TTL when the catalog gives no maxTtlMs (default 5 min). */
  maxTtlMs?: number
  deadlines?: 'deadlines-topic' | 'off' | DeadlineRegistrar
  /** Longest wait of one fetch of the live stream, ms (default 200). */
  fetchMaxWaitMs?: number
  /**
   * How long a command may wait for others to share its produce request, ms (default 0: sent at once, or with
   * those that arrived during the send in flight). Higher: fewer produce requests at high rates, more latency.
   */
  commandLingerMs?: number
  /**
   * How long a command may wait to be written while its partition has no leader or too few in-sync replicas (a
   * broker restarting), ms (default 120,000: the producer's delivery timeout). Past it the client gets an `error`
   * frame `WEIR_ERR_KAFKA` with `details.retriable: true` and may send the command again with the same requestId.
   */
  commandTimeoutMs?: number
  metadataRefreshMs?: number
  /** Replays (resumes) running at once; more wait their turn (default 8). */
  replayConcurrency?: number
  /** How often sockets with live results get a `checkpoint` frame, ms (default 5000). */
  checkpointIntervalMs?: number
  /** How long close() waits for commands being produced before closing sockets, ms (default 5000). */
  shutdownGraceMs?: number
  /** Register the gateway's metrics here (default: a registry of its own, `gateway.metrics.registry`). */
  registry?: Registry
}

export interface ResolvedGatewayOptions extends Required<Omit<GatewayOptions, 'registry' | 'rateLimit' | 'sessionSecret' | 'deadlines' | 'connection' | 'blobs'>> {
  readonly connection: KafkaConnection | undefined
  readonly blobs: ResolvedBlobOptions | undefined
  readonly registry: Registry | undefined
  readonly rateLimit: Required<RateLimitOptions>
  readonly sessionSecret: Uint8Array
  readonly deadlines: 'off' | DeadlineRegistrar
}

export function resolveGatewayOptions(options: GatewayOptions, deadlinesTopicRegistrar: DeadlineRegistrar): ResolvedGatewayOptions {
  const violations: string[] = []
  const positive = (name: string, value: unknown, min = 1) => {
    if (value !== undefined && !(Number.isInteger(value) && (value as number) >= min)) violations.push(`${name} must be an integer >= ${min}`)
  }
  if (options.catalog === undefined || typeof options.catalog.find !== 'function') violations.push('catalog must be made with createCommandCatalog()')
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) violations.push('brokers must be a non-empty array of host:port')
  validateAuthOptions(options.auth, violations)
  const secret = typeof options.sessionSecret === 'string' ? new TextEncoder().encode(options.sessionSecret) : options.sessionSecret
  if (!(secret instanceof Uint8Array) || secret.byteLength < 32) violations.push('sessionSecret must be at least 32 bytes, the same on every instance')
  if (options.port !== undefined && !(Number.isInteger(options.port) && options.port >= 0 && options.port < 65536)) violations.push('port must be 0..65535')
  if (options.path !== undefined && !/^\/[A-Za-z0-9/_.-]*$/.test(options.path)) violations.push("path must start with '/'")
  positive('maxFrameBytes', options.maxFrameBytes, 256)
  positive('maxPayloadLength', options.maxPayloadLength, 256)
  positive('maxBackpressure', options.maxBackpressure, 1024)
  positive('idleTimeoutSec', options.idleTimeoutSec, 0)
  positive('rateLimit.ratePerSecond', options.rateLimit?.ratePerSecond)
  positive('rateLimit.burst', options.rateLimit?.burst)
  positive('defaultTtlMs', options.defaultTtlMs)
  positive('maxTtlMs', options.maxTtlMs)
  positive('fetchMaxWaitMs', options.fetchMaxWaitMs, 0)
  positive('commandLingerMs', options.commandLingerMs, 0)
  positive('commandTimeoutMs', options.commandTimeoutMs, 1)
  positive('metadataRefreshMs', options.metadataRefreshMs)
  positive('replayConcurrency', options.replayConcurrency)
  positive('shutdownGraceMs', options.shutdownGraceMs, 0)
  positive('checkpointIntervalMs', options.checkpointIntervalMs, 100)
  const deadlines = options.deadlines ?? 'deadlines-topic'
  if (deadlines !== 'deadlines-topic' && deadlines !== 'off' && typeof deadlines !== 'function') {
    violations.push("deadlines must be 'deadlines-topic', 'off' or a function")
  }
  const maxFrameBytes = options.maxFrameBytes ?? 64 * 1024
  const maxPayloadLength = options.maxPayloadLength ?? maxFrameBytes * 4
  if (maxPayloadLength < maxFrameBytes) violations.push('maxPayloadLength must be >= maxFrameBytes')
  if (violations.length > 0) throw invalidOptions('Gateway', violations)
  const ratePerSecond = options.rateLimit?.ratePerSecond ?? 200
  return Object.freeze({
    catalog: options.catalog,
    brokers: [...options.brokers],
    connection: options.connection,
    auth: options.auth,
    sessionSecret: secret as Uint8Array,
    host: options.host ?? '0.0.0.0',
    port: options.port ?? 0,
    path: options.path ?? '/ws',
    instanceId: options.instanceId ?? `gw-${Math.random().toString(36).slice(2, 10)}`,
    clientId: options.clientId ?? 'weir-gateway',
    maxFrameBytes,
    maxPayloadLength,
    maxBackpressure: options.maxBackpressure ?? 1024 * 1024,
    idleTimeoutSec: options.idleTimeoutSec ?? 120,
    rateLimit: { ratePerSecond, burst: options.rateLimit?.burst ?? ratePerSecond * 2 },
    defaultTtlMs: options.defaultTtlMs ?? 30_000,
    maxTtlMs: options.maxTtlMs ?? 5 * 60_000,
    deadlines: deadlines === 'deadlines-topic' ? deadlinesTopicRegistrar : deadlines,
    fetchMaxWaitMs: options.fetchMaxWaitMs ?? 200,
    commandLingerMs: options.commandLingerMs ?? 0,
    commandTimeoutMs: options.commandTimeoutMs ?? 120_000,
    metadataRefreshMs: options.metadataRefreshMs ?? 30_000,
    replayConcurrency: options.replayConcurrency ?? 8,
    shutdownGraceMs: options.shutdownGraceMs ?? 5000,
    checkpointIntervalMs: options.checkpointIntervalMs ?? 5000,
    registry: options.registry,
    blobs: resolveBlobOptions(options.blobs),
  })
}
