// Reading partitions from explicit positions, with aborted transactions filtered correctly.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { createPartitionReader, createProducer } from '../../kafka/index.ts'
import type { ConsumedRecord } from '../../kafka/index.ts'
import { brokers, closeAdmin, consume, createTopics, produce, text, uniqueName } from '../helpers/kafka.ts'

after(closeAdmin)

async function writeAlternating(topic: string, rounds: number): Promise<void> {
  // One producer aborting several transactions that all land in one fetch response: @platformatic/kafka's
  // own read_committed filter lets all but the last of them through.
  const producer = createProducer({ brokers: brokers(), transactionalId: uniqueName('alt') })
  try {
    for (let i = 0; i < rounds; i++) {
      const aborted = await producer.beginTransaction()
      await aborted.send([{ topic, value: `aborted-${i}` }])
      await aborted.abort()
      const committed = await producer.beginTransaction()
      await committed.send([{ topic, value: `committed-${i}` }])
      await committed.commit()
    }
  } finally {
    await producer.close()
  }
}

test('a reader at read_committed never returns records of aborted transactions', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'alt', partitions: 1 })
  assert.ok(topic)
  await writeAlternating(topic, 4)
  const reader = createPartitionReader({ brokers: brokers(), maxWaitMs: 100 })
  t.after(() => reader.close())
  const [end] = await reader.offsets([{ topic, partition: 0 }], 'latest')
  assert.ok(end)
  const seen: ConsumedRecord[] = []
  let position = 0n
  while (position < end.offset) {
    for (const batch of await reader.fetch([{ topic, partition: 0, offset: position }])) {
      seen.push(...batch.records)
      position = batch.nextOffset
    }
  }
  assert.deepEqual(seen.map(text), ['committed-0', 'committed-1', 'committed-2', 'committed-3'])
  // Positions move past control markers: 4 rounds x (data + marker) x 2 transactions.
  assert.equal(position, 16n)

  const uncommitted = createPartitionReader({ brokers: brokers(), isolation: 'read_uncommitted', maxWaitMs: 100 })
  t.after(() => uncommitted.close())
  const [batch] = await uncommitted.fetch([{ topic, partition: 0, offset: 0n }])
  assert.ok(batch && batch.records.some((r) => text(r) === 'aborted-0'), 'read_uncommitted sees the aborted records')
})

test('read_committed keeps the committed transactions that lie between aborted ones of the same transactional id', async (t) => {
  // The shape a SIGKILLed worker leaves in a changelog: an aborted transaction with data, committed ones,
  // then an aborted transaction that had added the partition but wrote nothing there (here: its only record
  // was refused as too large). @platformatic/kafka's own filter drops everything between the first aborted
  // record and that last ABORT marker, the committed transactions included.
  const [topic] = await createTopics(t, { prefix: 'abort-gap', partitions: 1, configs: { 'max.message.bytes': '2000' } })
  assert.ok(topic)
  const transactionalId = uniqueName('gap')
  const producer = createProducer({ brokers: brokers(), transactionalId })
  t.after(() => producer.close())
  const aborted = await producer.beginTransaction()
  await aborted.send([{ topic, partition: 0, value: 'aborted' }])
  await aborted.abort()
  for (const value of ['committed-0', 'committed-1']) {
    const committed = await producer.beginTransaction()
    await committed.send([{ topic, partition: 0, value }])
    await committed.commit()
  }
  const empty = await producer.beginTransaction()
  await assert.rejects(empty.send([{ topic, partition: 0, value: Buffer.alloc(10_000) }]))
  await empty.abort()
  // A refused batch leaves the client's sequence numbers behind: the next owner of the id writes on.
  await producer.close()
  const next = createProducer({ brokers: brokers(), transactionalId })
  t.after(() => next.close())
  const last = await next.beginTransaction()
  await last.send([{ topic, partition: 0, value: 'committed-2' }])
  await last.commit()

  const reader = createPartitionReader({ brokers: brokers(), maxWaitMs: 100 })
  t.after(() => reader.close())
  const [end] = await reader.offsets([{ topic, partition: 0 }], 'latest')
  assert.ok(end)
  for (const from of [0n, 1n]) {
    const seen: ConsumedRecord[] = []
    let position = from
    while (position < end.offset) {
      for (const batch of await reader.fetch([{ topic, partition: 0, offset: position }])) {
        seen.push(...batch.records)
        position = batch.nextOffset
      }
    }
    assert.deepEqual(seen.map(text), ['committed-0', 'committed-1', 'committed-2'], `read from offset ${from}`)
  }
  const all = await consume(topic, { until: (r) => text(r) === 'committed-2' })
  assert.deepEqual(all.map(text), ['committed-0', 'committed-1', 'committed-2'])
})

test('the group consumer reads committed records only, from any position', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'alt-group', partitions: 1 })
  assert.ok(topic)
  await writeAlternating(topic, 3)
  const seen = await consume(topic, { until: (r) => text(r) === 'committed-2' })
  assert.deepEqual(seen.map(text), ['committed-0', 'committed-1', 'committed-2'])
})

test('offsets gives the log start and end; a position past the end is reported out of range', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'offsets', partitions: 2 })
  assert.ok(topic)
  await produce([
    { topic, partition: 1, value: 'a' },
    { topic, partition: 1, value: 'b' },
  ])
  const reader = createPartitionReader({ brokers: brokers(), maxWaitMs: 100 })
  t.after(() => reader.close())
  const partitions = [
    { topic, partition: 0 },
    { topic, partition: 1 },
  ]
  assert.deepEqual(
    (await reader.offsets(partitions, 'earliest')).map((o) => o.offset),
    [0n, 0n],
  )
  assert.deepEqual(
    (await reader.offsets(partitions, 'latest')).map((o) => o.offset),
    [0n, 2n],
  )
  const [beyond] = await reader.fetch([{ topic, partition: 1, offset: 50n }])
  assert.equal(beyond?.outOfRange, true)
})
