// The library publishes diagnostics; the service turns them into pino log lines.
import diagnostics from 'node:diagnostics_channel'

import type { Logger } from 'pino'

import { channelNames } from '../core/diagnostics.ts'
import type { CommitMessage, FaultInjectedMessage, FaultRuleMessage, RestoreProgressMessage, RuntimeErrorMessage, TaskMessage, TopicReplicationMessage, TransactionMessage } from '../core/diagnostics.ts'

export function subscribeLogging(logger: Logger, applicationId: string): () => void {
  const subscriptions: Array<[string, (message: unknown) => void]> = [
    [
      channelNames.task,
      (m) => {
        const message = m as TaskMessage
        if (message.applicationId !== applicationId) return
        const level = message.event === 'failed' ? 'error' : 'info'
        logger[level]({ task: message.taskId, partition: message.partition, restoredRecords: message.restoredRecords, durationMs: message.durationMs, err: message.error }, `task ${message.event}`)
      },
    ],
    [
      channelNames.restoreProgress,
      (m) => {
        const message = m as RestoreProgressMessage
        if (message.applicationId !== applicationId || message.restored % 10_000 !== 0) return
        logger.info({ task: message.taskId, store: message.store, restored: message.restored, remaining: String(message.remaining) }, 'restoring')
      },
    ],
    [
      channelNames.commit,
      (m) => {
        const message = m as CommitMessage
        if (message.applicationId !== applicationId) return
        if (message.error !== undefined) logger.warn({ err: message.error, tasks: message.tasks }, 'commit failed; tasks re-created from Kafka')
        else logger.debug({ tasks: message.tasks, outputs: message.outputs, changelog: message.changelogRecords, durationMs: message.durationMs }, 'committed')
      },
    ],
    [
      channelNames.runtimeError,
      (m) => {
        const message = m as RuntimeErrorMessage
        if (message.applicationId !== applicationId) return
        logger[message.fatal ? 'fatal' : 'warn']({ err: message.error }, message.fatal ? 'runtime failed' : 'runtime error (recovering)')
      },
    ],
    [
      channelNames.kafkaTopicReplication,
      (m) => {
        const message = m as TopicReplicationMessage
        if (message.applicationId !== undefined && message.applicationId !== applicationId) return
        logger.warn({ topic: message.topic, replicas: message.replicas, expected: message.expected }, `topic ${message.topic} has ${message.replicas} replica(s), fewer than ${message.expected}: losing a broker can lose its data`)
      },
    ],
    [
      channelNames.kafkaTransaction,
      (m) => {
        const message = m as TransactionMessage
        if (message.error !== undefined) logger.warn({ transactionalId: message.transactionalId, operation: message.operation, err: message.error }, 'transaction failed')
        else if (message.operation !== 'begin') logger.debug({ transactionalId: message.transactionalId, operation: message.operation, records: message.records, offsets: message.offsets, durationMs: message.durationMs }, 'transaction ended')
      },
    ],
    [
      channelNames.faultRule,
      (m) => {
        const message = m as FaultRuleMessage
        if (message.op === 'rejected') logger.warn({ err: message.error, source: message.source === undefined ? undefined : { ...message.source, offset: String(message.source.offset) } }, 'fault control record refused (skipped)')
        else logger.warn({ op: message.op, rule: message.rule, id: message.id }, `fault rule ${message.op}`)
      },
    ],
    [
      channelNames.faultInjected,
      (m) => {
        const message = m as FaultInjectedMessage
        logger.debug({ ...message }, `fault injected: ${message.kind}:${message.rule}`)
      },
    ],
  ]
  for (const [name, handler] of subscriptions) diagnostics.subscribe(name, handler)
  return () => {
    for (const [name, handler] of subscriptions) diagnostics.unsubscribe(name, handler)
  }
}
