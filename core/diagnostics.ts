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

export const channelNames = {
  envelopeRejected: 'weir:envelope:rejected',
  kafkaTransaction: 'weir:kafka:transaction',
  kafkaClientError: 'weir:kafka:client-error',
  task: 'weir:runtime:task',
  restoreProgress: 'weir:runtime:restore-progress',
  commit: 'weir:runtime:commit',
  runtimeError: 'weir:runtime:error',
} as const

export const channels = {
  envelopeRejected: diagnostics.channel(channelNames.envelopeRejected),
  kafkaTransaction: diagnostics.channel(channelNames.kafkaTransaction),
  kafkaClientError: diagnostics.channel(channelNames.kafkaClientError),
  task: diagnostics.channel(channelNames.task),
  restoreProgress: diagnostics.channel(channelNames.restoreProgress),
  commit: diagnostics.channel(channelNames.commit),
  runtimeError: diagnostics.channel(channelNames.runtimeError),
} as const

/** Publishes only when someone listens, so the hot path pays nothing otherwise. */
export function publish<T extends object>(channel: diagnostics.Channel, message: T): void {
  if (channel.hasSubscribers) channel.publish(message)
}
