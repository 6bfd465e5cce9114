// The Kafka adapter's transactional guarantees, on the real broker.
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { after, test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { createConsumer, createProducer } from '../../kafka/index.ts'
import type { ConsumedRecord, KafkaConsumer, KafkaProducer } from '../../kafka/index.ts'
import { admin, brokers, closeAdmin, consume, createTopics, produce, text, uniqueName } from '../helpers/kafka.ts'
import { withTimeout } from '../helpers/wait.ts'

after(closeAdmin)

/** Joins a group on `topic` and returns the first `count` records together with the consumer. */
async function readInputs(topic: string | string[], groupId: string, count: number): Promise<{ consumer: KafkaConsumer; records: ConsumedRecord[] }> {
  const consumer = createConsumer({ brokers: brokers(), groupId, maxWaitMs: 100 })
  const stream = await consumer.subscribe({ topics: Array.isArray(topic) ? topic : [topic], from: 'committed', fallback: 'earliest' })
  const records: ConsumedRecord[] = []
  await withTimeout(
    (async () => {
      for await (const record of stream) {
        records.push(record)
        if (records.length === count) break
      }
    })(),
    20_000,
    `reading ${count} input records`,
  )
  return { consumer, records }
}

function transactional(t: { after: (fn: () => Promise<void>) => void }): KafkaProducer {
  const producer = createProducer({ brokers: brokers(), transactionalId: uniqueName('tx') })
  t.after(() => producer.close())
  return producer
}

test('a committed transaction makes outputs and input offsets visible together', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'tx-in', partitions: 1 }, { prefix: 'tx-out', partitions: 1 })
  assert.ok(input && output)
  await produce([1, 2, 3].map((n) => ({ topic: input, key: `k${n}`, value: `in-${n}` })))
  const groupId = uniqueName('tx-group')
  const { consumer, records } = await readInputs(input, groupId, 3)
  t.after(() => consumer.close())
  const producer = transactional(t)

  const tx = await producer.beginTransaction()
  await tx.send(records.map((r) => ({ topic: output, key: r.key ?? null, value: `out-${text(r)}` })))
  await tx.sendOffsets(consumer, [{ topic: input, partition: 0, offset: (records.at(-1)?.offset ?? 0n) + 1n }])
  await tx.commit()

  const outputs = await consume(output, { count: 3 })
  assert.deepEqual(outputs.map(text), ['out-in-1', 'out-in-2', 'out-in-3'])
  assert.deepEqual(await admin().committedOffsets(groupId, input), [{ topic: input, partition: 0, offset: 3n }])
})

test('offsets of several topics and partitions commit in one call, with the outputs', async (t) => {
  const [a, b, output] = await createTopics(t, { prefix: 'txo-a', partitions: 2 }, { prefix: 'txo-b', partitions: 1 }, { prefix: 'txo-out', partitions: 1 })
  assert.ok(a && b && output)
  await produce([
    { topic: a, partition: 0, value: 'a0' },
    { topic: a, partition: 1, value: 'a1' },
    { topic: a, partition: 1, value: 'a1-bis' },
    { topic: b, partition: 0, value: 'b0' },
  ])
  const groupId = uniqueName('txo-group')
  const { consumer, records } = await readInputs([a, b], groupId, 4)
  t.after(() => consumer.close())
  const producer = transactional(t)
  const tx = await producer.beginTransaction()
  await tx.send(records.map((r) => ({ topic: output, value: `out-${text(r)}` })))
  await tx.sendOffsets(consumer, [
    { topic: a, partition: 0, offset: 1n },
    { topic: a, partition: 1, offset: 2n },
    { topic: b, partition: 0, offset: 1n },
  ])
  await tx.commit()
  assert.equal((await consume(output, { count: 4 })).length, 4)
  assert.deepEqual(
    (await admin().committedOffsets(groupId, a)).sort((x, y) => x.partition - y.partition),
    [
      { topic: a, partition: 0, offset: 1n },
      { topic: a, partition: 1, offset: 2n },
    ],
  )
  assert.deepEqual(await admin().committedOffsets(groupId, b), [{ topic: b, partition: 0, offset: 1n }])
})

test('an aborted transaction leaves neither outputs nor offsets behind', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'abort-in', partitions: 1 }, { prefix: 'abort-out', partitions: 1 })
  assert.ok(input && output)
  await produce([{ topic: input, value: 'a' }, { topic: input, value: 'b' }])
  const groupId = uniqueName('abort-group')
  const { consumer, records } = await readInputs(input, groupId, 2)
  t.after(() => consumer.close())
  const producer = transactional(t)

  const aborted = await producer.beginTransaction()
  await aborted.send([{ topic: output, value: 'aborted-1' }, { topic: output, value: 'aborted-2' }])
  await aborted.sendOffsets(consumer, [{ topic: input, partition: 0, offset: 2n }])
  await aborted.abort()

  const committed = await producer.beginTransaction()
  await committed.send([{ topic: output, value: 'committed-marker' }])
  await committed.commit()

  // read_committed: everything up to the marker, and none of it aborted.
  const seen = await consume(output, { until: (r) => text(r) === 'committed-marker' })
  assert.deepEqual(seen.map(text), ['committed-marker'])
  assert.deepEqual(await admin().committedOffsets(groupId, input), [])
  // read_uncommitted sees the aborted records: the assertion above is about isolation, not about a lost send.
  const raw = await consume(output, { isolation: 'read_uncommitted', until: (r) => text(r) === 'committed-marker' })
  assert.deepEqual(raw.map(text), ['aborted-1', 'aborted-2', 'committed-marker'])
  assert.equal(records.length, 2)
})

test('calls issued without awaiting inside one transaction all take effect', async (t) => {
  // @platformatic/kafka merges concurrent send/addOffset calls of one transaction; our adapter queues them.
  const [input, output] = await createTopics(t, { prefix: 'conc-in', partitions: 3 }, { prefix: 'conc-out', partitions: 4 })
  assert.ok(input && output)
  await produce([0, 1, 2].map((partition) => ({ topic: input, partition, value: `p${partition}` })))
  const groupId = uniqueName('conc-group')
  const { consumer, records } = await readInputs(input, groupId, 3)
  t.after(() => consumer.close())
  const producer = transactional(t)

  const tx = await producer.beginTransaction()
  const pending: Array<Promise<unknown>> = []
  for (let i = 0; i < 20; i++) pending.push(tx.send([{ topic: output, partition: i % 4, value: `v${i}` }]))
  for (const record of records) pending.push(tx.sendOffsets(consumer, [{ topic: input, partition: record.partition, offset: record.offset + 1n }]))
  await Promise.all(pending)
  await tx.commit()

  const outputs = await consume(output, { count: 20 })
  assert.deepEqual(outputs.map(text).sort(), Array.from({ length: 20 }, (_, i) => `v${i}`).sort())
  const offsets = await admin().committedOffsets(groupId, input)
  assert.deepEqual(
    offsets.map((o) => [o.partition, o.offset]),
    [
      [0, 1n],
      [1, 1n],
      [2, 1n],
    ],
  )
})

test('a second producer with the same transactional id fences the first (zombie)', async (t) => {
  const [output] = await createTopics(t, { prefix: 'fence-out', partitions: 1 })
  assert.ok(output)
  const transactionalId = uniqueName('fenced')
  const zombie = createProducer({ brokers: brokers(), transactionalId })
  const successor = createProducer({ brokers: brokers(), transactionalId })
  t.after(async () => {
    await zombie.close()
    await successor.close()
  })

  const stale = await zombie.beginTransaction()
  await stale.send([{ topic: output, value: 'from-zombie' }])
  const fresh = await successor.beginTransaction()
  await fresh.send([{ topic: output, value: 'from-successor' }])
  await fresh.commit()

  await assert.rejects(
    (async () => {
      await stale.send([{ topic: output, value: 'zombie-again' }])
      await stale.commit()
    })(),
    (error: unknown) => isWeirError(error) && (error.code === 'WEIR_ERR_KAFKA_FENCED' || error.code === 'WEIR_ERR_KAFKA_TRANSACTION'),
  )
  const seen = await consume(output, { until: (r) => text(r) === 'from-successor' })
  assert.deepEqual(seen.map(text), ['from-successor'])
})

test('a send larger than the broker\'s max.message.bytes for one partition is split and commits whole', async (t) => {
  // A busy task stages several MiB for one partition between commits; one record batch that large is
  // refused with MESSAGE_TOO_LARGE, so the adapter cuts sends into bounded requests (kafka/chunks.ts).
  const [output] = await createTopics(t, { prefix: 'big-tx', partitions: 1 })
  assert.ok(output)
  const producer = transactional(t)
  const value = 'x'.repeat(1024)
  const records = Array.from({ length: 3000 }, (_, i) => ({ topic: output, key: `k${i}`, value: `${i}:${value}` }))
  const tx = await producer.beginTransaction()
  const written = await tx.send(records)
  await tx.commit()
  assert.ok(written.length > 1, 'the 3 MiB send went out as several requests')
  assert.deepEqual(written.map((w) => w.offset), [...written.map((w) => w.offset)].sort((a, b) => (a < b ? -1 : 1)), 'requests in order')
  const outputs = await consume(output, { count: 3000 })
  assert.deepEqual(outputs.map((r) => Number(text(r).split(':')[0])), Array.from({ length: 3000 }, (_, i) => i))

  const plain = createProducer({ brokers: brokers(), clientId: 'big-plain' })
  t.after(() => plain.close())
  await plain.send(records.slice(0, 1500))
  assert.equal((await consume(output, { count: 4500 })).length, 4500)
})

test('the transaction timeout reaches the broker with InitProducerId, apart from the request timeout', async (t) => {
  // The broker refuses a timeout above its transaction.max.timeout.ms (15 min by default): that it refuses
  // this one shows the value is sent, not the client's 5 s request timeout.
  const tooLong = createProducer({ brokers: brokers(), transactionalId: uniqueName('tx-timeout-long'), transactionTimeoutMs: 16 * 60_000 })
  t.after(() => tooLong.close())
  await assert.rejects(tooLong.beginTransaction(), (e) => isWeirError(e) && inspect(e, { depth: 8 }).includes('INVALID_TRANSACTION_TIMEOUT'))
  const [topic] = await createTopics(t, { prefix: 'tx-timeout', partitions: 1 })
  assert.ok(topic)
  const producer = createProducer({ brokers: brokers(), transactionalId: uniqueName('tx-timeout'), transactionTimeoutMs: 60_000, requestTimeoutMs: 2000 })
  t.after(() => producer.close())
  const tx = await producer.beginTransaction()
  await tx.send([{ topic, key: 'k', value: 'v' }])
  await tx.commit()
  assert.deepEqual((await consume(topic, { count: 1 })).map(text), ['v'])
  assert.throws(() => createProducer({ brokers: brokers(), transactionTimeoutMs: 1000 }), (e) => isWeirError(e) && e.code === 'WEIR_ERR_INVALID_OPTIONS')
  assert.throws(() => createProducer({ brokers: brokers(), transactionalId: 'x', transactionTimeoutMs: 0 }), (e) => isWeirError(e) && e.code === 'WEIR_ERR_INVALID_OPTIONS')
})
