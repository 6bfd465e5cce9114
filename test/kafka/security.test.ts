// weir on a secured listener (SASL_SSL: SCRAM-SHA-512 over TLS, the StandardAuthorizer and the ACLs of
// scripts/infra/secure.ts): a worker and the gateway work end to end from the client properties files the
// infrastructure writes, and every way a connection is refused is a coded error naming the cause, at once.
import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { inspect } from 'node:util'

import { WeirError, isWeirError } from '../../core/errors.ts'
import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { followUp } from '../../envelope/envelope.ts'
import { createAdmin, createPartitionReader, createProducer, loadClientProperties } from '../../kafka/index.ts'
import type { ConsumedRecord, KafkaAdmin, KafkaConnection } from '../../kafka/index.ts'
import { makeCertificateAuthority } from '../../scripts/infra/secure.ts'
import { openStore } from '../../state/open-store.ts'
import { defineTopology } from '../../topology/define.ts'
import type { ProcessorContext } from '../../topology/processor.ts'
import type { StreamRecord } from '../../topology/record.ts'
import { changelogTopic, createStreamRuntime } from '../../topology/runtime/stream-runtime.ts'
import { openSocket, startGateway, testCatalog, token } from '../gateway/helpers.ts'
import { securePlaintextBrokers, secureKafka, stopSecureKafka, uniqueName } from '../helpers/kafka.ts'
import type { SecureKafka } from '../helpers/kafka.ts'

let kafka: SecureKafka
let plain: string[]
let admin: KafkaAdmin
const topics: string[] = []

before(async () => {
  kafka = await secureKafka()
  plain = await securePlaintextBrokers()
  admin = createAdmin({ brokers: plain, clientId: 'security-test-admin' })
})

after(async () => {
  await admin?.deleteTopics(topics).catch(() => {})
  await admin?.close()
  await stopSecureKafka()
})

const user = (name: string) => loadClientProperties(join(kafka.dir, `${name}.properties`))

/** Topics the worker and gateway principals may use (the ACLs are on this prefix), created over PLAINTEXT. */
async function secureTopics(partitions: number, ...names: string[]): Promise<string[]> {
  const created = names.map((name) => uniqueName(`${kafka.prefix}${name}`))
  await admin.createTopics(created.map((name) => ({ name, partitions })))
  topics.push(...created)
  return created
}

/** Fails the test with a timeout instead of hanging (a bound, not a measurement). */
function bounded<T>(promise: Promise<T>, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WeirError('WEIR_ERR_TIMEOUT', `no outcome in ${ms} ms: a hang or a retry loop`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function readUntil(topic: string, count: number): Promise<ConsumedRecord[]> {
  const reader = createPartitionReader({ brokers: plain, maxWaitMs: 100 })
  try {
    const partitions = Array.from({ length: await admin.partitionCount(topic) }, (_, partition) => ({ topic, partition }))
    let positions = await reader.offsets(partitions, 'earliest')
    const records: ConsumedRecord[] = []
    const deadline = Date.now() + 30_000
    while (records.length < count) {
      if (Date.now() > deadline) throw new WeirError('WEIR_ERR_TIMEOUT', `read ${records.length} of ${count} records of ${topic}`)
      for (const batch of await reader.fetch(positions)) {
        records.push(...batch.records)
        positions = positions.map((p) => (p.partition === batch.partition ? { ...p, offset: batch.nextOffset } : p))
      }
    }
    return records
  } finally {
    await reader.close()
  }
}

function countingTopology(input: string, output: string) {
  return defineTopology({
    sources: { input: { topic: input, keySerde: 'string', valueSerde: 'string' } },
    stores: { counts: { keySerde: 'string', valueSerde: 'json' } },
    processors: {
      count: {
        from: ['input'],
        stores: ['counts'],
        use: () => {
          let context: ProcessorContext
          return {
            init(c) {
              context = c
            },
            async process(record: StreamRecord<string, string>) {
              const store = context.store<string, number>('counts')
              const next = ((await store.get(record.key as string)) ?? 0) + 1
              await store.put(record.key as string, next)
              context.forward(record.withValue(`${record.key}=${next}`))
            },
          }
        },
      },
    },
    sinks: { out: { from: ['count'], topic: output, keySerde: 'string', valueSerde: 'string' } },
  })
}

async function runtimeFor(connection: KafkaConnection, brokers: readonly string[], input: string, output: string) {
  const stateDir = await mkdtemp(join(tmpdir(), 'weir-secure-state-'))
  const runtime = createStreamRuntime({
    applicationId: uniqueName(`${kafka.prefix}app`),
    topology: countingTopology(input, output),
    brokers,
    connection,
    stateDir,
    openStore,
    sessionTimeoutMs: 6000,
    heartbeatIntervalMs: 500,
  })
  return {
    runtime,
    async dispose() {
      await runtime.stop().catch(() => {})
      await rm(stateDir, { recursive: true, force: true })
    },
  }
}

test('a worker runs a topology exactly-once over SCRAM-SHA-512 and TLS, from its client properties file', async (t) => {
  const [input, output] = await secureTopics(2, 'in', 'out')
  assert.ok(input !== undefined && output !== undefined)
  const worker = user('worker')
  assert.equal(worker.connection.sasl?.mechanism, 'SCRAM-SHA-512')
  const { runtime, dispose } = await runtimeFor(worker.connection, worker.brokers ?? [], input, output)
  t.after(dispose)
  await bounded(runtime.start(), 90_000)
  // Its changelog and dead-letter topics were created by the worker principal (Create on the prefix).
  const names = await admin.listTopics()
  assert.ok(names.includes(changelogTopic(runtime.applicationId, 'counts')))
  assert.ok(names.includes(`${input}.dlq`))
  topics.push(changelogTopic(runtime.applicationId, 'counts'), `${input}.dlq`, `${runtime.applicationId}-timers.dlq`)

  const producer = createProducer({ brokers: plain, clientId: 'security-test-input' })
  t.after(() => producer.close())
  await producer.send(['a', 'b', 'a'].map((key) => ({ topic: input, key, value: 'x' })))
  const records = await readUntil(output, 3)
  assert.deepEqual(records.map((r) => r.value?.toString()).sort(), ['a=1', 'a=2', 'b=1'])
})

test('the gateway takes a command and delivers its result over SCRAM-SHA-512 and TLS', async (t) => {
  const [commands, results, events, deadlines] = await secureTopics(1, 'gw-commands', 'gw-results', 'gw-events', 'gw-deadlines')
  assert.ok(commands !== undefined && results !== undefined && events !== undefined && deadlines !== undefined)
  const gatewayUser = user('gateway')
  const gateway = await bounded(startGateway(t, { catalog: testCatalog({ commands, results, events, deadlines }), brokers: gatewayUser.brokers ?? [], connection: gatewayUser.connection }), 60_000)
  const socket = await openSocket(t, gateway.port, { token: await token({ sub: 'alice' }) })
  await socket.expect('welcome')
  socket.send({ type: 'resume', offsets: [] })
  await socket.expect('resumed')
  socket.send({ type: 'command', path: 'orders/sales/place', requestId: 'secure-1', payload: { orderId: 'o-1', qty: 1 }, ttlMs: 30_000 })
  await socket.expect('ack', (f) => f.requestId === 'secure-1')

  const [record] = await readUntil(commands, 1)
  const command = decodeEnvelope(record?.value as Buffer)
  assert.equal(command.requestId, 'secure-1')
  const producer = createProducer({ brokers: plain, clientId: 'security-test-results' })
  t.after(() => producer.close())
  await producer.send([{ topic: results, key: command.requestId, value: encodeEnvelope(followUp(command, { kind: 'result', alias: command.alias, payload: { placed: true }, status: 'ok' })) }])
  const result = await socket.expect('result', (f) => f.requestId === 'secure-1', 30_000)
  assert.deepEqual(result.payload, { placed: true })
})

test('a wrong password fails the worker at start with WEIR_ERR_KAFKA_AUTHENTICATION, never printing the password', async (t) => {
  const [input, output] = await secureTopics(1, 'wrong-pw-in', 'wrong-pw-out')
  const worker = user('worker')
  const sasl = worker.connection.sasl as { mechanism: 'SCRAM-SHA-512'; username: string; password: string }
  const wrong = `${sasl.password}-not-it`
  const { runtime, dispose } = await runtimeFor({ ...worker.connection, sasl: { ...sasl, password: wrong } }, worker.brokers ?? [], input as string, output as string)
  t.after(dispose)
  // Connection attempts to the secure listener: one per broker at most (the client tries each bootstrap broker),
  // not one per retry (@platformatic/kafka would retry a refused login 8 times).
  const ports = new Set((worker.brokers ?? []).map((b) => Number(b.split(':')[1])))
  let attempts = 0
  const connects = diagnostics.tracingChannel('plt:kafka:connections:connects')
  const none = () => {}
  const counter = { start: (context: object) => void (ports.has((context as { port?: number }).port ?? -1) && attempts++), end: none, asyncStart: none, asyncEnd: none, error: none }
  connects.subscribe(counter)
  t.after(() => connects.unsubscribe(counter))
  const error = await bounded(runtime.start().then(() => assert.fail('started'), (e: unknown) => e))
  assert.ok(attempts >= 1 && attempts <= ports.size, `${attempts} connection attempts to ${ports.size} broker(s)`)
  assert.ok(isWeirError(error, 'WEIR_ERR_KAFKA_AUTHENTICATION'), String(error))
  assert.match(error.message, /refused the SASL credentials.*SCRAM-SHA-512/)
  for (const rendering of [error.message, JSON.stringify(error), inspect(error, { depth: 8 })]) assert.ok(!rendering.includes(wrong))
})

test('an unknown user fails the gateway at start with WEIR_ERR_KAFKA_AUTHENTICATION (PLAIN)', async (t) => {
  const [commands, results, events, deadlines] = await secureTopics(1, 'gw-unknown-c', 'gw-unknown-r', 'gw-unknown-e', 'gw-unknown-d')
  const gatewayUser = loadClientProperties(join(kafka.dir, 'gateway-plain.properties'))
  const sasl = gatewayUser.connection.sasl as { mechanism: 'PLAIN'; username: string; password: string }
  assert.equal(sasl.mechanism, 'PLAIN')
  const error = await bounded(
    startGateway(t, {
      catalog: testCatalog({ commands: commands as string, results: results as string, events: events as string, deadlines: deadlines as string }),
      brokers: gatewayUser.brokers ?? [],
      connection: { ...gatewayUser.connection, sasl: { ...sasl, username: 'nobody' } },
    }).then(() => assert.fail('started'), (e: unknown) => e),
  )
  assert.ok(isWeirError(error, 'WEIR_ERR_KAFKA_AUTHENTICATION'), String(error))
})

test('a CA that did not sign the broker certificate is WEIR_ERR_KAFKA_TLS, naming the certificate error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weir-other-ca-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const otherCa = await readFile(await makeCertificateAuthority(dir, 'other'), 'utf8')
  const worker = user('worker')
  const client = createAdmin({ brokers: worker.brokers ?? [], connection: { ...worker.connection, tls: { ca: otherCa } } })
  t.after(() => client.close())
  const error = await bounded(client.listTopics().then(() => assert.fail('connected'), (e: unknown) => e))
  assert.ok(isWeirError(error, 'WEIR_ERR_KAFKA_TLS'), String(error))
  assert.match(error.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/)
})

test('a missing ACL is WEIR_ERR_KAFKA_AUTHORIZATION naming the resource and the operation', async (t) => {
  // A source topic outside the worker principal's prefix: it may not even describe it.
  const foreign = uniqueName('not-granted-in')
  await admin.createTopics([{ name: foreign, partitions: 1 }])
  topics.push(foreign)
  const [output] = await secureTopics(1, 'acl-out')
  const worker = user('worker')
  const { runtime, dispose } = await runtimeFor(worker.connection, worker.brokers ?? [], foreign, output as string)
  t.after(dispose)
  const error = await bounded(runtime.start().then(() => assert.fail('started'), (e: unknown) => e))
  assert.ok(isWeirError(error, 'WEIR_ERR_KAFKA_AUTHORIZATION'), String(error))
  assert.deepEqual({ type: error.details.resourceType, name: error.details.resourceName, operation: error.details.operation }, { type: 'Topic', name: foreign, operation: 'Describe' })

  // A sink topic outside the prefix: the first commit is refused, and the runtime fails instead of retrying it.
  const [input] = await secureTopics(1, 'acl-in')
  const foreignOut = uniqueName('not-granted-out')
  await admin.createTopics([{ name: foreignOut, partitions: 1 }])
  topics.push(foreignOut)
  const sink = await runtimeFor(worker.connection, worker.brokers ?? [], input as string, foreignOut)
  t.after(sink.dispose)
  await bounded(sink.runtime.start(), 90_000)
  topics.push(changelogTopic(sink.runtime.applicationId, 'counts'), `${input}.dlq`, `${sink.runtime.applicationId}-timers.dlq`)
  const producer0 = createProducer({ brokers: plain, clientId: 'security-test-acl-input' })
  t.after(() => producer0.close())
  await producer0.send([{ topic: input as string, key: 'k', value: 'v' }])
  const failed = await bounded(sink.runtime.done.then(() => assert.fail('stopped cleanly'), (e: unknown) => e))
  assert.ok(isWeirError(failed, 'WEIR_ERR_KAFKA_AUTHORIZATION'), String(failed))
  assert.equal(failed.details.resourceName, foreignOut)
  assert.equal(failed.details.operation, 'Write')

  // A transactional id outside the prefix: Write on TransactionalId.
  const producer = createProducer({ brokers: worker.brokers ?? [], connection: worker.connection, transactionalId: 'not-granted-tx' })
  t.after(() => producer.close())
  const denied = await bounded(producer.beginTransaction().then(() => assert.fail('began'), (e: unknown) => e))
  assert.ok(isWeirError(denied, 'WEIR_ERR_KAFKA_AUTHORIZATION'), String(denied))
  assert.match(denied.message, /Write on TransactionalId not-granted-tx/)
})
