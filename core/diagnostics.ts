// The library does not log. It publishes on these node:diagnostics_channel channels; services
// (the worker CLI, the gateway) subscribe and log with pino, tests subscribe to observe.
// Every channel weir publishes on is declared here, with the shape of its messages.
import diagnostics from 'node:diagnostics_channel'

import type { WeirError } from './errors.ts'

export interface EnvelopeRejectedMessage {
  error: WeirError
  /** Where the bytes came from, when known (a Kafka record, a socket frame). */
  source?: { topic?: string; partition?: number; offset?: bigint }
}

export interface TransactionMessage {
  transactionalId: string
  operation: 'begin' | 'commit' | 'abort'
  records?: number
  offsets?: number
  durationMs?: number
  error?: unknown
}

export interface ClientErrorMessage {
  client: 'producer' | 'consumer' | 'admin'
  clientId: string
  error: unknown
}

/** A topic weir uses has fewer replicas than the application asks for (or than the broker's default). */
export interface TopicReplicationMessage {
  applicationId?: string
  topic: string
  /** The fewest replicas of any of its partitions. */
  replicas: number
  expected: number
}

export interface TaskMessage {
  applicationId: string
  taskId: string
  partition: number
  event: 'assigned' | 'restored' | 'revoked' | 'failed'
  /** restored: records replayed from changelogs and the time it took. */
  restoredRecords?: number
  durationMs?: number
  error?: unknown
}

export interface RestoreProgressMessage {
  applicationId: string
  taskId: string
  store: string
  restored: number
  /** Records (offsets) left to replay, approximately. */
  remaining: bigint
}

export interface CommitMessage {
  applicationId: string
  tasks: number
  outputs: number
  changelogRecords: number
  durationMs: number
  error?: unknown
}

export interface RuntimeErrorMessage {
  applicationId: string
  error: unknown
  /** fatal: the runtime stops; otherwise the affected tasks are re-created. */
  fatal: boolean
}

export interface GatewayConnectionMessage {
  instanceId: string
  event: 'open' | 'close' | 'rejected'
  subject?: string
  sessionId?: string
  /** close: the WebSocket close code; rejected: the HTTP status. */
  code?: number
  /**
   * rejected: the error code (WEIR_ERR_UNAUTHENTICATED, ...); close: why (backpressure, token expired, shutdown),
   * else the close reason uWS reports: the client's, or uWS's own when it dropped the connection (e.g.
   * 'Received invalid UTF-8', 'Received too big message').
   */
  reason?: string
  /** open: the upgrade completed inside uWS's upgrade handler (sync: the token was accepted without waiting) or later. */
  upgrade?: 'sync' | 'async'
}

export interface GatewayCommandMessage {
  instanceId: string
  requestId: string
  path: string
  sessionId: string
  outcome: 'accepted' | 'rejected' | 'failed'
  /** rejected / failed: the error code sent to the client. */
  code?: string
  durationMs?: number
  error?: unknown
}

export interface GatewayReplayMessage {
  instanceId: string
  sessionId: string
  /** 'results' or 'events:<alias>'. */
  stream: string
  replayed: number
  gaps: number
  durationMs: number
  switched: boolean
  error?: unknown
}

export interface GatewayUploadMessage {
  instanceId: string
  /** The uploader (the token's subject), when the token was valid. */
  subject?: string
  outcome: 'stored' | 'refused' | 'failed'
  /** Bytes of the body the store received. */
  size: number
  /** Most bytes that waited in the gateway's memory for the store at any time (bounded at 1 MiB). */
  maxWaitingBytes: number
  /** Bytes that waited on disk (the upload spool) because the store was behind. */
  spilledBytes: number
  code?: string
  durationMs: number
}

export interface GatewayErrorMessage {
  instanceId: string
  where: string
  error: unknown
}

/** A fault rule set, deleted or cleared (docs/faults.md), or a control record refused as malformed. */
export interface FaultRuleMessage {
  op: 'set' | 'delete' | 'clear' | 'rejected'
  /** set: the rule in force now. */
  rule?: { readonly id: string; readonly kind: string }
  /** delete: the rule's id. */
  id?: string
  /** rejected: WEIR_ERR_FAULT_RULE_INVALID with the violations. */
  error?: WeirError
  /** rejected: where the control record came from. */
  source?: { topic?: string; partition?: number; offset?: bigint }
}

/** A fault was injected (docs/faults.md): the rule, its kind and where. */
export interface FaultInjectedMessage {
  kind: string
  rule: string
  processor: string
  path?: string
  topic?: string
  requestId?: string
}

export const channelNames = {
  envelopeRejected: 'weir:envelope:rejected',
  kafkaTransaction: 'weir:kafka:transaction',
  kafkaClientError: 'weir:kafka:client-error',
  kafkaTopicReplication: 'weir:kafka:topic-replication',
  task: 'weir:runtime:task',
  restoreProgress: 'weir:runtime:restore-progress',
  commit: 'weir:runtime:commit',
  runtimeError: 'weir:runtime:error',
  gatewayConnection: 'weir:gateway:connection',
  gatewayCommand: 'weir:gateway:command',
  gatewayReplay: 'weir:gateway:replay',
  gatewayError: 'weir:gateway:error',
  faultRule: 'weir:faults:rule',
  faultInjected: 'weir:faults:injected',
  gatewayUpload: 'weir:gateway:upload',
} as const

export const channels = {
  envelopeRejected: diagnostics.channel(channelNames.envelopeRejected),
  kafkaTransaction: diagnostics.channel(channelNames.kafkaTransaction),
  kafkaClientError: diagnostics.channel(channelNames.kafkaClientError),
  kafkaTopicReplication: diagnostics.channel(channelNames.kafkaTopicReplication),
  task: diagnostics.channel(channelNames.task),
  restoreProgress: diagnostics.channel(channelNames.restoreProgress),
  commit: diagnostics.channel(channelNames.commit),
  runtimeError: diagnostics.channel(channelNames.runtimeError),
  gatewayConnection: diagnostics.channel(channelNames.gatewayConnection),
  gatewayCommand: diagnostics.channel(channelNames.gatewayCommand),
  gatewayReplay: diagnostics.channel(channelNames.gatewayReplay),
  gatewayError: diagnostics.channel(channelNames.gatewayError),
  faultRule: diagnostics.channel(channelNames.faultRule),
  faultInjected: diagnostics.channel(channelNames.faultInjected),
  gatewayUpload: diagnostics.channel(channelNames.gatewayUpload),
} as const

/** Publishes only when someone listens, so the hot path pays nothing otherwise. */
export function publish<T extends object>(channel: diagnostics.Channel, message: T): void {
  if (channel.hasSubscribers) channel.publish(message)
}
