// Replication of the topics weir creates (changelogs, dead letters, timer and scheduler topics): a factor and
// min.insync.replicas per application, by default the broker's defaults (CreateTopics with -1, as Kafka
// Streams does). Topics that already exist with fewer replicas than that are reported, not changed.
import { channels, publish } from '../core/diagnostics.ts'
import type { KafkaAdmin } from './admin.ts'
import type { TopicSpec } from './types.ts'

export interface ReplicationSettings {
  /** Replicas per partition of created topics (default: the broker's default.replication.factor). */
  readonly replicationFactor?: number
  /** min.insync.replicas of created topics (default: the broker's min.insync.replicas). */
  readonly minInsyncReplicas?: number
}

export function validateReplication(settings: ReplicationSettings | undefined, violations: string[]): void {
  if (settings === undefined) return
  const { replicationFactor, minInsyncReplicas } = settings
  if (replicationFactor !== undefined && !(Number.isInteger(replicationFactor) && (replicationFactor >= 1 || replicationFactor === -1))) {
    violations.push('replicationFactor must be a positive integer (or -1: the broker default)')
  }
  if (minInsyncReplicas !== undefined && !(Number.isInteger(minInsyncReplicas) && minInsyncReplicas >= 1)) violations.push('minInsyncReplicas must be a positive integer')
  if (replicationFactor !== undefined && replicationFactor > 0 && minInsyncReplicas !== undefined && minInsyncReplicas > replicationFactor) {
    violations.push(`minInsyncReplicas (${minInsyncReplicas}) cannot exceed replicationFactor (${replicationFactor}): every write would fail`)
  }
}

/** The specs with the application's replication applied (a spec's own settings win). */
export function withReplication(specs: readonly TopicSpec[], settings: ReplicationSettings | undefined): TopicSpec[] {
  return specs.map((spec) => ({
    ...spec,
    ...(spec.replicationFactor === undefined && settings?.replicationFactor !== undefined ? { replicationFactor: settings.replicationFactor } : {}),
    configs: {
      ...(settings?.minInsyncReplicas === undefined ? {} : { 'min.insync.replicas': String(settings.minInsyncReplicas) }),
      ...spec.configs,
    },
  }))
}

/**
 * Publishes a warning (weir:kafka:topic-replication) for every topic that has fewer replicas than configured,
 * or than the broker's default when nothing is configured; returns the warnings.
 */
export async function checkReplication(
  admin: KafkaAdmin,
  topics: readonly string[],
  settings: ReplicationSettings | undefined,
  applicationId?: string,
): Promise<Array<{ topic: string; replicas: number; expected: number }>> {
  const configured = settings?.replicationFactor
  const expected = configured !== undefined && configured > 0 ? configured : await admin.defaultReplicationFactor()
  if (expected === undefined || expected <= 1) return []
  const warnings: Array<{ topic: string; replicas: number; expected: number }> = []
  for (const [topic, replicas] of await admin.replicationFactors([...new Set(topics)])) {
    if (replicas >= expected) continue
    warnings.push({ topic, replicas, expected })
    publish(channels.kafkaTopicReplication, { ...(applicationId === undefined ? {} : { applicationId }), topic, replicas, expected })
  }
  return warnings
}
