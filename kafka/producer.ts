import { Producer, ProduceAcks, kOptions } from '@platformatic/kafka'

import { channels, publish } from '../core/diagnostics.ts'
import { WeirError } from '../core/errors.ts'
import type { KafkaConsumer } from './consumer.ts'
import { groupInternals } from './group.ts'
import type { GroupMember } from './group.ts'
import { chunkRecords } from './chunks.ts'
import { baseClientOptions, stopRetryingFatalErrors, toMessage, validateClientOptions, wrapKafkaError } from './convert.ts'
import type { RetryPolicy } from './convert.ts'
import { javaCompatiblePartitioner } from './partitioner.ts'
import { routeProduceByLeader } from './produce-routing.ts'
import { commitOffsetsInTransaction, useClientAddPartitionsToTxn } from './transaction-requests.ts'
import type { KafkaClientOptions, OutgoingRecord, ProducedRecordMetadata, TopicPartitionOffset } from './types.ts'

export interface KafkaProducerOptions extends KafkaClientOptions {
  /** Stable id that fences older instances (zombies) using the same id; enables transactions. */
  transactionalId?: string
  /** Idempotent delivery (no duplicates from retries). Default true; forced on with transactionalId. */
  idempotent?: boolean
  /**
   * How long the broker lets a transaction stay open before it aborts it, ms (default 10,000, Kafka Streams'
   * default under exactly-once; at most the broker's transaction.max.timeout.ms). @platformatic/kafka would send
   * its request timeout (5 s by default) instead, and a commit that carries a backlog can take longer.
   */
  transactionTimeoutMs?: number
  /**
   * How long a send keeps retrying retriable errors (a leader election, not enough in-sync replicas, a request
   * timeout, a lost connection) before it fails, ms (default 120,000, the Java client's delivery.timeout.ms).
   * A transactional producer retries the steps of an open transaction (AddPartitionsToTxn, TxnOffsetCommit,
   * EndTxn, its sends) only until a second before transactionTimeoutMs has passed since the coordinator accepted
   * its first partitions or offsets (when the broker's clock of the transaction starts): past it the broker has
   * aborted the transaction. Before that, the first AddPartitionsToTxn retries for the delivery timeout.
   */
  deliveryTimeoutMs?: number
  /** First wait between retries, ms (default 100, Java's retry.backoff.ms); doubled per retry. */
  retryBackoffMs?: number
  /** Longest wait between retries, ms (default 1,000, Java's retry.backoff.max.ms). */
  retryBackoffMaxMs?: number
}

const DEFAULT_TRANSACTION_TIMEOUT_MS = 10_000
const DEFAULT_DELIVERY_TIMEOUT_MS = 120_000
const DEFAULT_RETRY_BACKOFF_MS = 100
const DEFAULT_RETRY_BACKOFF_MAX_MS = 1000
/** How long before the transaction timeout the retries of a transaction's steps stop, ms. */
const TRANSACTION_MARGIN_MS = 1000
/** Steps that start a transactional producer (not part of an open transaction): retried for the delivery timeout. */
const PRODUCER_START = new Set(['initProducerId', 'findCoordinator', 'listApis', 'metadata'])

export interface KafkaProducer {
  readonly transactionalId: string | undefined
  /**
   * Produces outside any transaction (acks=all, idempotent unless disabled). Large sends are cut into requests of
   * at most MAX_SEND_BYTES (kafka/chunks.ts), sent in order; the result has, per request and partition, the base
   * offset of that request's records for the partition (so a partition can appear more than once).
   */
  send(records: readonly OutgoingRecord[]): Promise<ProducedRecordMetadata[]>
  /** Starts a transaction; only one can be open per producer. Needs `transactionalId`. */
  beginTransaction(): Promise<KafkaTransaction>
  close(): Promise<void>
}

/**
 * One Kafka transaction. Calls are queued and run one after another, even when the caller does not
 * await them: @platformatic/kafka merges concurrent send/addOffset calls of one transaction under a
 * fixed key, so a second concurrent call would be silently dropped (see ../shared/ENVIRONMENT.md).
 */
export interface KafkaTransaction {
  send(records: readonly OutgoingRecord[]): Promise<ProducedRecordMetadata[]>
  /**
   * Commits `offsets` (next offset to consume) for the group of `member` as part of this transaction, with
   * the member's generation: a member that lost its partitions in a rebalance cannot commit for them (KIP-447).
   */
  sendOffsets(member: KafkaConsumer | GroupMember, offsets: readonly TopicPartitionOffset[]): Promise<void>
  commit(): Promise<void>
  abort(): Promise<void>
  readonly records: number
}

export function createProducer(options: KafkaProducerOptions): KafkaProducer {
  const violations: string[] = []
  if (options.transactionalId !== undefined && (typeof options.transactionalId !== 'string' || options.transactionalId.length === 0)) {
    violations.push('transactionalId must be a non-empty string when given')
  }
  if (options.transactionalId !== undefined && options.idempotent === false) {
    violations.push('a transactional producer is always idempotent: drop idempotent: false')
  }
  if (options.transactionTimeoutMs !== undefined) {
    if (options.transactionalId === undefined) violations.push('transactionTimeoutMs needs a transactionalId')
    if (!(Number.isInteger(options.transactionTimeoutMs) && options.transactionTimeoutMs > 0)) violations.push('transactionTimeoutMs must be a positive integer')
  }
  for (const key of ['deliveryTimeoutMs', 'retryBackoffMs', 'retryBackoffMaxMs'] as const) {
    const value = options[key]
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) violations.push(`${key} must be a positive integer`)
  }
  if (options.retryBackoffMs !== undefined && options.retryBackoffMaxMs !== undefined && options.retryBackoffMs > options.retryBackoffMaxMs) {
    violations.push('retryBackoffMs must not exceed retryBackoffMaxMs')
  }
  validateClientOptions('KafkaProducer', options, violations)

  const transactionalId = options.transactionalId
  const idempotent = transactionalId !== undefined || options.idempotent !== false
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS
  const transactionTimeoutMs = options.transactionTimeoutMs ?? DEFAULT_TRANSACTION_TIMEOUT_MS
  const policy: RetryPolicy = {
    budgetMs: (operationId) => {
      // Metadata and coordinator lookups inside an open transaction (the first send to a topic) are steps of it too.
      if (transactionalId === undefined || (open === undefined && PRODUCER_START.has(operationId))) return deliveryTimeoutMs
      // Until the coordinator accepted the transaction's first partitions or offsets its clock has not started
      // (nothing can time out): the first step retries for the delivery timeout, as the Java client's. Not so the
      // metadata of a topic the transaction sends to first: a topic that does not exist (yet) fails the send
      // within the transaction's timeout from its begin, so the task backs off instead of waiting two minutes.
      if (openSince === undefined) {
        if (operationId !== 'metadata' || begunAt === undefined) return deliveryTimeoutMs
        return Math.max(0, begunAt + transactionTimeoutMs - TRANSACTION_MARGIN_MS - performance.now())
      }
      // A step of an open transaction retries only while the transaction can still commit: past its timeout the
      // broker aborts it and bumps the epoch, and the next request would read as fenced by a newer instance
      // (the task would then wait for a rebalance that never comes). A second early, the step fails as itself.
      return Math.max(0, openSince + transactionTimeoutMs - TRANSACTION_MARGIN_MS - performance.now())
    },
    backoffMs: options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS,
    backoffMaxMs: Math.max(options.retryBackoffMaxMs ?? DEFAULT_RETRY_BACKOFF_MAX_MS, options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS),
  }
  const producer = stopRetryingFatalErrors(new Producer<Buffer, Buffer, Buffer, Buffer>({
    ...baseClientOptions(options, transactionalId ?? 'weir-producer', policy),
    idempotent,
    acks: ProduceAcks.ALL,
    ...(transactionalId === undefined ? {} : { transactionalId }),
    autocreateTopics: false,
    partitioner: javaCompatiblePartitioner(),
    ...(options.connection?.compression === undefined || options.connection.compression === 'none' ? {} : { compression: options.connection.compression }),
  }), policy)
  routeProduceByLeader(producer)
  useClientAddPartitionsToTxn(producer, () => {
    // The broker starts the transaction's clock at its first partitions or offsets it accepted.
    if (open !== undefined) openSince ??= performance.now()
  })
  let closed = false
  let open: KafkaTransaction | undefined
  /** performance.now() when the coordinator first accepted partitions or offsets of the open transaction (its clock started). */
  let openSince: number | undefined
  /** performance.now() when the open transaction was begun. */
  let begunAt: number | undefined

  const guard = () => {
    if (closed) throw new WeirError('WEIR_ERR_CLOSED', 'KafkaProducer is closed')
  }

  return {
    transactionalId,

    async send(records) {
      guard()
      if (records.length === 0) return []
      const written: ProducedRecordMetadata[] = []
      try {
        for (const chunk of chunkRecords(records)) {
          const result = await producer.send({ messages: chunk.map(toMessage), acks: ProduceAcks.ALL })
          for (const o of result.offsets ?? []) written.push({ topic: o.topic, partition: o.partition, offset: o.offset })
        }
        return written
      } catch (error) {
        throw wrapKafkaError(error, 'send', { operation: 'Write', topics: [...new Set(records.map((r) => r.topic))] })
      }
    },

    async beginTransaction() {
      guard()
      if (transactionalId === undefined) {
        throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'beginTransaction needs a producer created with a transactionalId')
      }
      if (open !== undefined) throw new WeirError('WEIR_ERR_KAFKA_TRANSACTION', `transaction of ${transactionalId} is already open`)
      const started = performance.now()
      let tx: Awaited<ReturnType<typeof producer.beginTransaction>>
      try {
        // @platformatic/kafka 2.12 sends InitProducerId with producerId 0 / epoch 0 unless told otherwise;
        // the broker reads that as a stale producer and answers PRODUCER_FENCED whenever the transactional
        // id already has state (every restart). -1/-1 means "new producer": the broker aborts any open
        // transaction of the previous instance, bumps the epoch, and fences that instance.
        // The first begin sends InitProducerId, whose transaction timeout the client takes from its request
        // timeout option: that option holds the transaction timeout while the begin runs.
        const clientOptions = (producer as unknown as Record<symbol, { timeout?: number }>)[kOptions] as { timeout?: number }
        const requestTimeout = clientOptions.timeout
        clientOptions.timeout = transactionTimeoutMs
        try {
          tx = await producer.beginTransaction({ producerId: -1n, producerEpoch: -1 })
        } finally {
          clientOptions.timeout = requestTimeout
        }
      } catch (error) {
        throw wrapKafkaError(error, 'beginTransaction', { operation: 'Write', transactionalId })
      }
      publish(channels.kafkaTransaction, { transactionalId, operation: 'begin' })
      openSince = undefined
      begunAt = performance.now()
      const transaction = createTransaction(producer, tx, transactionalId, started, () => {
        open = undefined
        openSince = undefined
        begunAt = undefined
      })
      open = transaction
      return transaction
    },

    async close() {
      if (closed) return
      closed = true
      if (open !== undefined) await open.abort().catch(() => {})
      await producer.close()
    },
  }
}

type PlatformaticTransaction = Awaited<ReturnType<Producer<Buffer, Buffer, Buffer, Buffer>['beginTransaction']>>

function createTransaction(
  producer: Producer<Buffer, Buffer, Buffer, Buffer>,
  tx: PlatformaticTransaction,
  transactionalId: string,
  started: number,
  onEnd: () => void,
): KafkaTransaction {
  let queue: Promise<unknown> = Promise.resolve()
  let ended = false
  let records = 0
  let offsets = 0
  const addedGroups = new Set<string>()

  // Runs `step` after every earlier call of this transaction has settled.
  function enqueue<T>(what: string, step: () => Promise<T>): Promise<T> {
    const run = queue.then(
      () => {
        if (ended) throw new WeirError('WEIR_ERR_KAFKA_TRANSACTION', `${what}: transaction of ${transactionalId} already ended`)
        return step()
      },
      () => {
        throw new WeirError('WEIR_ERR_KAFKA_TRANSACTION', `${what}: an earlier step of this transaction failed; abort it`)
      },
    )
    queue = run.catch(() => {
      // Keep the chain alive for abort(); the caller gets the rejection from `run`.
    })
    return run
  }

  const end = async (commit: boolean) => {
    const operation = commit ? 'commit' : 'abort'
    // Ends wait for queued sends, but run even if one of them failed (abort must always be possible).
    await queue
    if (ended) return
    try {
      if (commit) await tx.commit()
      else await tx.abort()
      ended = true
      onEnd()
      publish(channels.kafkaTransaction, { transactionalId, operation, records, offsets, durationMs: performance.now() - started })
    } catch (error) {
      publish(channels.kafkaTransaction, { transactionalId, operation, records, offsets, error })
      const wrapped = wrapKafkaError(error, `${operation} transaction of ${transactionalId}`, { operation: 'Write', transactionalId })
      if (!commit) {
        // An abort that fails leaves nothing visible; the producer must be recreated, and the next
        // initTransactions (beginTransaction) aborts it broker-side.
        ended = true
        onEnd()
      }
      throw wrapped.code === 'WEIR_ERR_KAFKA' && commit ? new WeirError('WEIR_ERR_KAFKA_TRANSACTION', wrapped.message, { cause: error, details: wrapped.details }) : wrapped
    }
  }

  return {
    get records() {
      return records
    },

    send(batch) {
      return enqueue('send', async () => {
        if (batch.length === 0) return []
        const written: ProducedRecordMetadata[] = []
        try {
          for (const chunk of chunkRecords(batch)) {
            const result = await tx.send({ messages: chunk.map(toMessage) })
            records += chunk.length
            for (const o of result.offsets ?? []) written.push({ topic: o.topic, partition: o.partition, offset: o.offset })
          }
          return written
        } catch (error) {
          throw wrapKafkaError(error, `send in transaction of ${transactionalId}`, { operation: 'Write', topics: [...new Set(batch.map((r) => r.topic))], transactionalId })
        }
      })
    },

    sendOffsets(consumer, toCommit) {
      if (toCommit.length === 0) return Promise.resolve()
      return enqueue('sendOffsets', async () => {
        const group = groupInternals(consumer)
        const groupId = group.current().groupId
        try {
          if (!addedGroups.has(groupId)) {
            await tx.addConsumer(group.client)
            addedGroups.add(groupId)
          }
          // One TxnOffsetCommit for every position (the client's addOffset sends one request per offset, in
          // sequence: three round trips per commit for a task reading three topics). The group's generation
          // and member id go with it, which lets the broker fence a member that lost its partitions (KIP-447).
          await commitOffsetsInTransaction(producer, transactionalId, group.current, toCommit)
          offsets += toCommit.length
        } catch (error) {
          throw wrapKafkaError(error, `sendOffsets in transaction of ${transactionalId}`, { operation: 'Read', group: groupId, transactionalId })
        }
      })
    },

    commit: () => end(true),
    abort: () => end(false),
  }
}
