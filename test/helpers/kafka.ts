// Test harness for the real broker: one broker per run (from scripts/test.ts via KAFKA_BOOTSTRAP_SERVERS),
// unique topic and group names per test, helpers to produce and to consume with bounded waits.
import { randomBytes } from 'node:crypto'
import type { TestContext } from 'node:test'

import { WeirError } from '../../core/errors.ts'
import { createAdmin, createConsumer, createPartitionReader, createProducer, kafkaFromEnvironment } from '../../kafka/index.ts'
import type { ConsumedRecord, Isolation, KafkaAdmin, KafkaConnection, OutgoingRecord, TopicSpec } from '../../kafka/index.ts'

/**
 * Brokers and security of the cluster the tests run on: KAFKA_BOOTSTRAP_SERVERS, and WEIR_KAFKA_CONFIG (a client
 * properties file) when the suite runs against a secured cluster.
 */
export function clientOptions(): { brokers: string[]; connection?: KafkaConnection } {
  const { brokers: list, connection } = kafkaFromEnvironment({ ...process.env, KAFKA_BOOTSTRAP_SERVERS: brokers().join(',') })
  return { brokers: list, ...(connection === undefined ? {} : { connection }) }
}

let security: { connection?: KafkaConnection } | undefined
/**
 * TLS and SASL of WEIR_KAFKA_CONFIG (a client properties file), for every client a test, benchmark or chaos run
 * makes besides the worker and gateway processes, which read the same variable themselves: spread it into the
 * client's options. Empty without the variable.
 */
export function kafkaSecurity(): { connection?: KafkaConnection } {
  if (security === undefined) {
    const { connection } = kafkaFromEnvironment({ WEIR_KAFKA_CONFIG: process.env.WEIR_KAFKA_CONFIG, KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:9092' })
    security = connection === undefined ? {} : { connection }
  }
  return security
}

export function brokers(): string[] {
  const value = process.env.KAFKA_BOOTSTRAP_SERVERS
  if (!value) {
    throw new WeirError(
      'WEIR_ERR_INVALID_OPTIONS',
      'KAFKA_BOOTSTRAP_SERVERS is not set: run the tests with `npm test` (it provides a broker) or point it at a broker',
    )
  }
  return value.split(',').map((b) => b.trim())
}

let counter = 0
/** A name no other test (or earlier run against the same broker) uses. */
export function uniqueName(prefix: string): string {
  counter += 1
  return `${prefix}-${process.pid}-${counter}-${randomBytes(3).toString('hex')}`
}

let sharedAdmin: KafkaAdmin | undefined
export function admin(): KafkaAdmin {
  sharedAdmin ??= createAdmin({ ...clientOptions(), clientId: `weir-test-admin-${process.pid}` })
  return sharedAdmin
}

const created: string[] = []

/**
 * Deletes the topics this file created and closes the shared admin client; call from the file's `after`
 * hook (after every test's own cleanup, so nothing still reads a topic when it goes).
 */
export async function closeAdmin(): Promise<void> {
  const current = sharedAdmin
  sharedAdmin = undefined
  if (current !== undefined && created.length > 0) await current.deleteTopics(created.splice(0)).catch(() => {})
  await current?.close()
}

/** Creates uniquely named topics (deleted by closeAdmin) and returns their names in order. */
export async function createTopics(_t: TestContext, ...specs: Array<Omit<TopicSpec, 'name'> & { prefix: string }>): Promise<string[]> {
  const topics = specs.map(({ prefix, ...spec }) => ({ ...spec, name: uniqueName(prefix) }))
  await admin().createTopics(topics)
  created.push(...topics.map((topic) => topic.name))
  return topics.map((topic) => topic.name)
}

export async function produce(records: readonly OutgoingRecord[]): Promise<void> {
  const producer = createProducer({ ...clientOptions(), clientId: uniqueName('test-producer') })
  try {
    await producer.send(records)
  } finally {
    await producer.close()
  }
}

export interface ConsumeOptions {
  isolation?: Isolation
  timeoutMs?: number
  /** Stop as soon as a record satisfies this (it is included in the result). */
  until?: (record: ConsumedRecord, all: readonly ConsumedRecord[]) => boolean
  /** Stop after this many records. */
  count?: number
}

/**
 * Reads `topic` from the beginning with a fresh consumer group until `count` records arrived or `until`
 * matched. Fails with WEIR_ERR_TIMEOUT (listing what did arrive) if that does not happen in time.
 */
export async function consume(topic: string, options: ConsumeOptions): Promise<ConsumedRecord[]> {
  const { isolation = 'read_committed', timeoutMs = 20_000, count, until } = options
  if (count === undefined && until === undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'consume needs count or until')
  const consumer = createConsumer({ ...clientOptions(), groupId: uniqueName('test-reader'), isolation, maxWaitMs: 100 })
  const received: ConsumedRecord[] = []
  let timedOut = false
  const stream = await consumer.subscribe({ topics: [topic], from: 'earliest' })
  const timer = setTimeout(() => {
    timedOut = true
    void stream.close()
  }, timeoutMs)
  try {
    for await (const record of stream) {
      received.push(record)
      if ((count !== undefined && received.length >= count) || (until !== undefined && until(record, received))) break
    }
  } catch (error) {
    if (!timedOut) throw error
  } finally {
    clearTimeout(timer)
    await stream.close()
    await consumer.close()
  }
  if (timedOut) {
    throw new WeirError('WEIR_ERR_TIMEOUT', `read ${received.length} record(s) of ${topic} in ${timeoutMs} ms, wanted ${count ?? 'a matching one'}`, {
      details: { received: received.map((r) => `${r.partition}@${r.offset}:${r.value?.toString('utf8').slice(0, 40)}`) },
    })
  }
  return received
}

export function text(record: ConsumedRecord): string {
  return record.value?.toString('utf8') ?? ''
}

/** Every committed record of every partition of `topic`, up to the end offsets at the time of the call. */
export async function readAll(topic: string, timeoutMs = 120_000): Promise<ConsumedRecord[]> {
  const reader = createPartitionReader({ ...clientOptions(), maxWaitMs: 100 })
  try {
    const count = await admin().partitionCount(topic)
    const partitions = Array.from({ length: count }, (_, partition) => ({ topic, partition }))
    const ends = new Map((await reader.offsets(partitions, 'latest')).map((o) => [o.partition, o.offset]))
    const positions = new Map((await reader.offsets(partitions, 'earliest')).map((o) => [o.partition, o.offset]))
    const records: ConsumedRecord[] = []
    const deadline = Date.now() + timeoutMs
    const open = () => [...positions].filter(([p, offset]) => offset < (ends.get(p) ?? 0n)).map(([partition, offset]) => ({ topic, partition, offset }))
    for (let todo = open(); todo.length > 0; todo = open()) {
      if (Date.now() > deadline) throw new WeirError('WEIR_ERR_TIMEOUT', `readAll(${topic}) did not reach the end offsets in ${timeoutMs} ms`)
      for (const batch of await reader.fetch(todo)) {
        records.push(...batch.records)
        positions.set(batch.partition, batch.nextOffset)
      }
    }
    return records
  } finally {
    await reader.close()
  }
}

export interface SecureKafka {
  /** host:port of the SASL_SSL listener. */
  readonly brokers: string[]
  /** Folder with ca.pem and <user>.properties (SCRAM-SHA-512) / <user>-plain.properties (PLAIN): admin, worker, gateway. */
  readonly dir: string
  /** The worker and gateway principals may only use topics, groups and transactional ids starting with this. */
  readonly prefix: string
}

let secure: Promise<{ kafka: SecureKafka; stop: () => Promise<void> }> | undefined

/**
 * The SASL_SSL listener the test runner's local broker has (KAFKA_SECURE_BOOTSTRAP_SERVERS, WEIR_SECURE_KAFKA_DIR);
 * when the run uses a broker without one, a secure broker of this file's own (stopped by stopSecureKafka).
 */
export function secureKafka(): Promise<SecureKafka> {
  secure ??= (async () => {
    const servers = process.env.KAFKA_SECURE_BOOTSTRAP_SERVERS
    const dir = process.env.WEIR_SECURE_KAFKA_DIR
    const { SECURE_PREFIX } = await import('../../scripts/infra/secure.ts')
    if (servers && dir) return { kafka: { brokers: servers.split(','), dir, prefix: SECURE_PREFIX }, stop: async () => {} }
    const { startLocalBroker } = await import('../../scripts/infra/kafka.ts')
    const { createProgress } = await import('../../scripts/infra/progress.ts')
    const broker = await startLocalBroker(createProgress('secure-kafka'), { secure: true })
    const listener = broker.secure
    if (listener === undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'the local broker has no secure listener')
    return { kafka: { brokers: [...listener.brokers], dir: listener.dir, prefix: listener.prefix, plaintext: broker.brokers }, stop: () => broker.stop() }
  })()
  return secure.then((s) => s.kafka)
}

/** The PLAINTEXT side of the secure broker (its principal is a super user): the harness's broker, or the file's own. */
export async function securePlaintextBrokers(): Promise<string[]> {
  const kafka = (await secureKafka()) as SecureKafka & { plaintext?: string[] }
  return kafka.plaintext ?? brokers()
}

export async function stopSecureKafka(): Promise<void> {
  const current = secure
  secure = undefined
  if (current !== undefined) await (await current).stop()
}
