// The parts of a transaction weir sends itself, through @platformatic/kafka's internals: AddPartitionsToTxn at the
// clients' version (v3), and every consumer position in one TxnOffsetCommit that follows a moved group coordinator.
import { FindCoordinatorKeyTypes, addPartitionsToTxnV3, kGetApi, kGetBootstrapConnection, kGetConnection, kMetadata, kPerformWithRetry } from '@platformatic/kafka'
import type { Producer } from '@platformatic/kafka'

import type { GroupGeneration } from './group.ts'
import type { TopicPartitionOffset } from './types.ts'

/** The requests after whose first success the broker's clock of a transaction runs (its state becomes Ongoing). */
const STARTS_TRANSACTION = new Set(['AddPartitionsToTxn', 'AddOffsetsToTxn'])

/**
 * @platformatic/kafka sends AddPartitionsToTxn at the newest version the broker offers (v5). Versions 4 and up
 * are the brokers' own batched form: the broker authorizes them as ClusterAction on the cluster, so a
 * transactional producer with the ACLs the Java client needs (Write on its transactional id and topics) is
 * refused with CLUSTER_AUTHORIZATION_FAILED. Clients send v3, as the Java client does; same request layout.
 * `onAdded` is called after each AddPartitionsToTxn or AddOffsetsToTxn the coordinator accepted: the first one
 * starts the transaction's timeout on the broker. Until then a coordinator that is still completing the previous
 * transaction (CONCURRENT_TRANSACTIONS while its markers wait for a partition leader) or that moved is no reason
 * to give up within the transaction timeout.
 */
export function useClientAddPartitionsToTxn(producer: Producer<Buffer, Buffer, Buffer, Buffer>, onAdded: () => void): void {
  const target = producer as unknown as Record<symbol, (name: string, callback: Callback<unknown>) => void>
  const original = target[kGetApi] as (name: string, callback: Callback<unknown>) => void
  target[kGetApi] = function (this: unknown, name: string, callback: Callback<unknown>) {
    if (!STARTS_TRANSACTION.has(name)) return original.call(this, name, callback)
    original.call(this, name, (error, api) => {
      if (error) return callback(error)
      const send = (name === 'AddPartitionsToTxn' ? addPartitionsToTxnV3.api : api) as (...args: unknown[]) => void
      callback(null, (...args: unknown[]) => {
        const done = args.pop() as Callback<unknown>
        send(...args, (error: Error | null, response?: unknown) => {
          if (!error) onAdded()
          done(error, response)
        })
      })
    })
  }
}

/** The client's internals the batched TxnOffsetCommit uses (exported by @platformatic/kafka, untyped here). */
interface ProducerInternals {
  producerId: bigint | undefined
  producerEpoch: number | undefined
  [kPerformWithRetry](operationId: string, operation: (callback: Callback<unknown>, attempt?: number) => void, callback: Callback<unknown>): void
  [kMetadata](options: { topics: string[]; forceUpdate?: boolean }, callback: Callback<ClusterMetadata>): void
  [kGetBootstrapConnection](callback: Callback<unknown>, attempt?: number): void
  [kGetConnection](broker: unknown, callback: Callback<unknown>): void
  [kGetApi](name: string, callback: Callback<(...args: unknown[]) => void>): void
}
type Callback<T> = (error: Error | null, value?: T) => void
interface ClusterMetadata {
  brokers: Map<number, unknown>
  topics: Map<string, { partitions: Array<{ leaderEpoch: number }> }>
}

/**
 * Commits consumer offsets within the producer's open transaction, every position in one TxnOffsetCommit request.
 * The first attempt goes to the coordinator the group member knows; a retry (the coordinator moved or its broker
 * died) asks the cluster again with FindCoordinator, as the Java client does.
 */
export function commitOffsetsInTransaction(
  client: Producer<Buffer, Buffer, Buffer, Buffer>,
  transactionalId: string,
  generationOf: () => GroupGeneration,
  positions: readonly TopicPartitionOffset[],
): Promise<void> {
  const internals = client as unknown as ProducerInternals
  const byTopic = new Map<string, TopicPartitionOffset[]>()
  for (const p of positions) {
    const list = byTopic.get(p.topic)
    if (list === undefined) byTopic.set(p.topic, [p])
    else list.push(p)
  }
  const findCoordinator = (groupId: string, done: Callback<number>) => {
    internals[kGetBootstrapConnection]((error, connection) => {
      if (error) return done(error)
      internals[kGetApi]('FindCoordinator', (error, api) => {
        if (error || api === undefined) return done(error ?? new Error('no FindCoordinator API'))
        api(connection, FindCoordinatorKeyTypes.GROUP, [groupId], (error: Error | null, response?: { coordinators: Array<{ key: string; nodeId: number }> }) => {
          if (error || response === undefined) return done(error ?? new Error('no FindCoordinator response'))
          const found = response.coordinators.find((c) => c.key === groupId) ?? response.coordinators[0]
          if (found === undefined) return done(new Error(`no coordinator for group ${groupId}`))
          done(null, found.nodeId)
        })
      })
    })
  }
  return new Promise<void>((resolve, reject) => {
    const attempt = (done: Callback<unknown>, attemptNumber = 0) => {
      const generation = generationOf()
      const withCoordinator = (coordinatorId: number | null) => {
        // Fresh metadata after a failure: the coordinator's broker may be new to the cached list.
        internals[kMetadata]({ topics: [...byTopic.keys()], ...(attemptNumber > 0 ? { forceUpdate: true } : {}) }, (error, metadata) => {
          if (error || metadata === undefined) return done(error ?? new Error('no metadata'))
          const coordinator = coordinatorId === null ? undefined : metadata.brokers.get(coordinatorId)
          if (coordinator === undefined) return done(new Error(`group coordinator ${coordinatorId} of ${generation.groupId} is unknown`))
          internals[kGetConnection](coordinator, (error, connection) => {
            if (error) return done(error)
            internals[kGetApi]('TxnOffsetCommit', (error, api) => {
              if (error || api === undefined) return done(error ?? new Error('no TxnOffsetCommit API'))
              const topics = [...byTopic].map(([name, list]) => ({
                name,
                partitions: list.map((p) => ({
                  partitionIndex: p.partition,
                  // The position is the next offset to read: what a group commits.
                  committedOffset: p.offset,
                  committedLeaderEpoch: metadata.topics.get(name)?.partitions[p.partition]?.leaderEpoch ?? -1,
                })),
              }))
              api(connection, transactionalId, generation.groupId, internals.producerId, internals.producerEpoch, generation.generationId, generation.memberId, null, topics, (error: Error | null) => done(error))
            })
          })
        })
      }
      if (attemptNumber === 0 && generation.coordinatorId !== null) return withCoordinator(generation.coordinatorId)
      findCoordinator(generation.groupId, (error, nodeId) => (error ? done(error) : withCoordinator(nodeId ?? null)))
    }
    internals[kPerformWithRetry]('commit', attempt, (error) => (error ? reject(error) : resolve()))
  })
}
