// The gateway library publishes diagnostics; the service turns them into pino log lines.
import diagnostics from 'node:diagnostics_channel'

import type { Logger } from 'pino'

import { channelNames } from '../core/diagnostics.ts'
import type { ClientErrorMessage, EnvelopeRejectedMessage, GatewayCommandMessage, GatewayConnectionMessage, GatewayErrorMessage, GatewayReplayMessage } from '../core/diagnostics.ts'

export function subscribeGatewayLogging(logger: Logger, instanceId: string): () => void {
  const mine = (m: { instanceId: string }) => m.instanceId === instanceId
  const subscriptions: Array<[string, (message: unknown) => void]> = [
    [
      channelNames.gatewayConnection,
      (m) => {
        const message = m as GatewayConnectionMessage
        if (!mine(message)) return
        const level = message.event === 'rejected' || message.reason === 'backpressure' ? 'info' : 'debug'
        logger[level]({ subject: message.subject, session: message.sessionId, code: message.code, reason: message.reason }, `connection ${message.event}`)
      },
    ],
    [
      channelNames.gatewayCommand,
      (m) => {
        const message = m as GatewayCommandMessage
        if (!mine(message)) return
        const level = message.outcome === 'failed' ? 'warn' : 'debug'
        logger[level](
          { requestId: message.requestId, path: message.path, session: message.sessionId, code: message.code, durationMs: message.durationMs, err: message.error },
          `command ${message.outcome}`,
        )
      },
    ],
    [
      channelNames.gatewayReplay,
      (m) => {
        const message = m as GatewayReplayMessage
        if (!mine(message)) return
        logger[message.error === undefined ? 'debug' : 'warn'](
          { session: message.sessionId, stream: message.stream, replayed: message.replayed, gaps: message.gaps, durationMs: message.durationMs, err: message.error },
          message.error === undefined ? 'replay done' : 'replay failed',
        )
      },
    ],
    [
      channelNames.gatewayError,
      (m) => {
        const message = m as GatewayErrorMessage
        if (mine(message)) logger.warn({ where: message.where, err: message.error }, 'gateway error (recovering)')
      },
    ],
    [
      channelNames.envelopeRejected,
      (m) => {
        const message = m as EnvelopeRejectedMessage
        const source = message.source
        logger.warn({ err: message.error, topic: source?.topic, partition: source?.partition, offset: source?.offset?.toString() }, 'record is not an envelope: skipped')
      },
    ],
    [
      channelNames.kafkaClientError,
      (m) => {
        const message = m as ClientErrorMessage
        logger.warn({ client: message.client, clientId: message.clientId, err: message.error }, 'kafka client error')
      },
    ],
  ]
  for (const [name, handler] of subscriptions) diagnostics.subscribe(name, handler)
  return () => {
    for (const [name, handler] of subscriptions) diagnostics.unsubscribe(name, handler)
  }
}
