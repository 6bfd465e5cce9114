import { AclOperations, AclPermissionTypes, Admin, ConfigResourceTypes, ResourcePatternTypes, ResourceTypes } from '@platformatic/kafka'

import { WeirError } from '../core/errors.ts'
import { baseClientOptions, hasProtocolError, stopRetryingFatalErrors, validateClientOptions, wrapKafkaError } from './convert.ts'
import type { AclBinding, KafkaClientOptions, TopicPartitionOffset, TopicSpec } from './types.ts'

export interface KafkaAdmin {
  /** Creates the topics that do not exist yet; existing ones are left as they are. */
  createTopics(topics: readonly TopicSpec[]): Promise<void>
  deleteTopics(topics: readonly string[]): Promise<void>
  listTopics(): Promise<string[]>
  /** Partition count of an existing topic. */
  partitionCount(topic: string): Promise<number>
  /** Log end offsets (the next offset to be written, or the last stable offset for read_committed). */
  endOffsets(topic: string, isolation?: 'read_committed' | 'read_uncommitted'): Promise<TopicPartitionOffset[]>
  /** Offsets a consumer group committed for a topic; partitions without a commit are omitted. */
  committedOffsets(groupId: string, topic: string): Promise<TopicPartitionOffset[]>
  /** Replicas of each partition of existing topics (topics that do not exist are omitted). */
  replicationFactors(topics: readonly string[]): Promise<Map<string, number>>
  /** The brokers' default.replication.factor (what topics created with replication -1 get), if the principal may read it. */
  defaultReplicationFactor(): Promise<number | undefined>
  /** Creates allow ACLs (needs a principal allowed to Alter the cluster). */
  createAcls(acls: readonly AclBinding[]): Promise<void>
  close(): Promise<void>
}

export function createAdmin(options: KafkaClientOptions): KafkaAdmin {
  validateClientOptions('KafkaAdmin', options)
  const admin = stopRetryingFatalErrors(new Admin({ ...baseClientOptions(options, 'weir-admin') }))
  let closed = false
  const guard = () => {
    if (closed) throw new WeirError('WEIR_ERR_CLOSED', 'KafkaAdmin is closed')
  }

  return {
    async createTopics(topics) {
      guard()
      const existing = new Set(await admin.listTopics().catch((e: unknown) => Promise.reject(wrapKafkaError(e, 'listTopics', { operation: 'Describe', topics: topics.map((t) => t.name) }))))
      for (const spec of topics) {
        if (existing.has(spec.name)) continue
        try {
          await admin.createTopics({
            topics: [spec.name],
            partitions: spec.partitions ?? 1,
            replicas: spec.replicationFactor ?? -1,
            configs: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
          })
        } catch (error) {
          // Another client may have created it meanwhile (workers starting together): that is success.
          if (!hasProtocolError(error, 'TOPIC_ALREADY_EXISTS')) throw wrapKafkaError(error, `createTopics(${spec.name})`, { operation: 'Create', topics: [spec.name] })
        }
      }
      // Metadata is eventually consistent: wait until every new topic has a leader for each partition.
      await admin.metadata({ topics: topics.map((t) => t.name), forceUpdate: true }).catch((e: unknown) => {
        throw wrapKafkaError(e, 'metadata', { operation: 'Describe', topics: topics.map((t) => t.name) })
      })
    },

    async deleteTopics(topics) {
      guard()
      if (topics.length === 0) return
      await admin.deleteTopics({ topics: [...topics] }).catch((e: unknown) => {
        throw wrapKafkaError(e, 'deleteTopics')
      })
    },

    async listTopics() {
      guard()
      return admin.listTopics().catch((e: unknown) => Promise.reject(wrapKafkaError(e, 'listTopics')))
    },

    async partitionCount(topic) {
      guard()
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true }).catch((e: unknown) => {
        throw wrapKafkaError(e, `metadata(${topic})`, { operation: 'Describe', topics: [topic] })
      })
      const found = metadata.topics.get(topic)
      if (found === undefined) throw new WeirError('WEIR_ERR_KAFKA', `topic ${topic} does not exist`)
      return found.partitionsCount
    },

    async endOffsets(topic, isolation = 'read_uncommitted') {
      guard()
      const count = await this.partitionCount(topic)
      const listed = await admin
        .listOffsets({
          isolationLevel: isolation === 'read_committed' ? 1 : 0,
          topics: [{ name: topic, partitions: Array.from({ length: count }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n })) }],
        })
        .catch((e: unknown) => {
          throw wrapKafkaError(e, `listOffsets(${topic})`)
        })
      return listed.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, offset: p.offset })))
    },

    async committedOffsets(groupId, topic) {
      guard()
      const count = await this.partitionCount(topic)
      const groups = await admin
        .listConsumerGroupOffsets({
          groups: [{ groupId, topics: [{ name: topic, partitionIndexes: Array.from({ length: count }, (_, i) => i) }] }],
          requireStable: true,
        })
        .catch((e: unknown) => {
          throw wrapKafkaError(e, `listConsumerGroupOffsets(${groupId})`)
        })
      const result: TopicPartitionOffset[] = []
      for (const group of groups) {
        for (const t of group.topics) {
          for (const p of t.partitions) {
            if (p.committedOffset >= 0n) result.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset })
          }
        }
      }
      return result.sort((a, b) => a.partition - b.partition)
    },

    async replicationFactors(topics) {
      guard()
      const result = new Map<string, number>()
      if (topics.length === 0) return result
      const existing = new Set(await admin.listTopics().catch((e: unknown) => Promise.reject(wrapKafkaError(e, 'listTopics', { operation: 'Describe', topics }))))
      const wanted = topics.filter((t) => existing.has(t))
      if (wanted.length === 0) return result
      const metadata = await admin.metadata({ topics: wanted, forceUpdate: true }).catch((e: unknown) => {
        throw wrapKafkaError(e, 'metadata', { operation: 'Describe', topics: wanted })
      })
      for (const [name, topic] of metadata.topics) {
        // The fewest replicas of any partition: that is how many copies the least protected data has.
        result.set(name, Math.min(...topic.partitions.map((p) => p.replicas.length)))
      }
      return result
    },

    async defaultReplicationFactor() {
      guard()
      try {
        const metadata = await admin.metadata({ topics: [] })
        const [brokerId] = [...metadata.brokers.keys()]
        if (brokerId === undefined) return undefined
        const described = await admin.describeConfigs({
          resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName: String(brokerId), configurationKeys: ['default.replication.factor'] }],
        })
        const value = described[0]?.configs.find((c) => c.name === 'default.replication.factor')?.value
        const n = Number(value)
        return value === null || value === undefined || !Number.isInteger(n) ? undefined : n
      } catch {
        // Managed clusters may not let the principal describe broker configs: then nothing is compared.
        return undefined
      }
    },

    async createAcls(acls) {
      guard()
      if (acls.length === 0) return
      await admin
        .createAcls({
          creations: acls.map((acl) => ({
            resourceType: ResourceTypes[ACL_RESOURCE[acl.resourceType]],
            resourceName: acl.resourceName,
            resourcePatternType: acl.pattern === 'prefixed' ? ResourcePatternTypes.PREFIXED : ResourcePatternTypes.LITERAL,
            principal: acl.principal,
            host: acl.host ?? '*',
            operation: AclOperations[ACL_OPERATION[acl.operation]],
            permissionType: AclPermissionTypes.ALLOW,
          })),
        })
        .catch((e: unknown) => {
          throw wrapKafkaError(e, 'createAcls', { operation: 'Alter' })
        })
    },

    async close() {
      if (closed) return
      closed = true
      await admin.close()
    },
  }
}

const ACL_RESOURCE = { Topic: 'TOPIC', Group: 'GROUP', Cluster: 'CLUSTER', TransactionalId: 'TRANSACTIONAL_ID' } as const
const ACL_OPERATION = {
  All: 'ALL',
  Read: 'READ',
  Write: 'WRITE',
  Create: 'CREATE',
  Delete: 'DELETE',
  Alter: 'ALTER',
  Describe: 'DESCRIBE',
  DescribeConfigs: 'DESCRIBE_CONFIGS',
  AlterConfigs: 'ALTER_CONFIGS',
  IdempotentWrite: 'IDEMPOTENT_WRITE',
} as const
