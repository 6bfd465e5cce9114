// Where things live in the cluster right now: partition leaders and coordinators. For tools that act on a
// particular broker (chaos runs and the broker-failure tests kill the leader or a coordinator).
import { Admin, FindCoordinatorKeyTypes } from '@platformatic/kafka'

import { baseClientOptions, stopRetryingFatalErrors, validateClientOptions, wrapKafkaError } from './convert.ts'
import type { KafkaClientOptions } from './types.ts'

export interface ClusterView {
  /** Leader node id of every partition of `topic` (-1 while a partition has none), by partition. */
  leaders(topic: string): Promise<number[]>
  /** In-sync replicas of every partition of `topic`, by partition. */
  inSyncReplicas(topic: string): Promise<number[][]>
  /** Node id of the coordinator of a consumer group or a transactional id. */
  coordinator(kind: 'group' | 'transaction', key: string): Promise<number>
  /** Names of the topics that start with `prefix`. */
  topicsWithPrefix(prefix: string): Promise<string[]>
  /** Node ids of the brokers the cluster lists now. */
  brokers(): Promise<number[]>
  close(): Promise<void>
}

export function createClusterView(options: KafkaClientOptions): ClusterView {
  validateClientOptions('ClusterView', options)
  const admin = stopRetryingFatalErrors(new Admin({ ...baseClientOptions(options, 'weir-cluster-view') }))
  const topicMetadata = async (topic: string) => {
    const metadata = await admin.metadata({ topics: [topic], forceUpdate: true }).catch((e: unknown) => {
      throw wrapKafkaError(e, `metadata(${topic})`, { operation: 'Describe', topics: [topic] })
    })
    return metadata.topics.get(topic)?.partitions ?? []
  }
  return {
    async leaders(topic) {
      return (await topicMetadata(topic)).map((p) => p.leader)
    },
    async inSyncReplicas(topic) {
      return (await topicMetadata(topic)).map((p) => [...p.isr])
    },
    async coordinator(kind, key) {
      const found = await admin
        .findCoordinator({ keyType: kind === 'group' ? FindCoordinatorKeyTypes.GROUP : FindCoordinatorKeyTypes.TRANSACTION, keys: [key] })
        .catch((e: unknown) => {
          throw wrapKafkaError(e, `findCoordinator(${kind} ${key})`, { operation: 'Describe' })
        })
      const entry = found.find((c) => c.key === key) ?? found[0]
      if (entry === undefined || entry.nodeId < 0) throw wrapKafkaError(new Error(`no coordinator for ${kind} ${key}`), 'findCoordinator')
      return entry.nodeId
    },
    async topicsWithPrefix(prefix) {
      const topics = await admin.listTopics().catch((e: unknown) => {
        throw wrapKafkaError(e, 'listTopics', { operation: 'Describe' })
      })
      return topics.filter((t) => t.startsWith(prefix))
    },
    async brokers() {
      const metadata = await admin.metadata({ topics: [], forceUpdate: true }).catch((e: unknown) => {
        throw wrapKafkaError(e, 'metadata')
      })
      return [...metadata.brokers.keys()].sort((a, b) => a - b)
    },
    async close() {
      await admin.close()
    },
  }
}
