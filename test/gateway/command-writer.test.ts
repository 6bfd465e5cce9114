// Group commit of commands: batched sends, each command acked with its own partition and offset.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { createCommandWriter } from '../../gateway/command-writer.ts'
import { createProducer } from '../../kafka/index.ts'
import type { KafkaProducer, OutgoingRecord } from '../../kafka/index.ts'
import { brokers, closeAdmin, createTopics, readAll, text } from '../helpers/kafka.ts'

after(closeAdmin)

test('concurrent writes share sends, and each resolves with the partition and offset its record really has', async (t) => {
  const [topic, other] = await createTopics(t, { prefix: 'gw-writer', partitions: 3 }, { prefix: 'gw-writer-other', partitions: 2 })
  assert.ok(topic && other)
  const producer = createProducer({ brokers: brokers(), clientId: 'gw-writer-test' })
  t.after(() => producer.close())
  let sends = 0
  const counting: KafkaProducer = {
    ...producer,
    send(records: readonly OutgoingRecord[]) {
      sends++
      return producer.send(records)
    },
  }
  const writer = createCommandWriter({ producer: counting, partitionCount: (name) => (name === topic ? 3 : undefined) })
  const count = 60
  // Each write carries a second record on another topic (as deadline registrations do).
  const acks = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      writer.write([
        { topic, key: `key-${i % 7}`, value: `v-${i}` },
        { topic: other, key: `key-${i}`, value: `d-${i}` },
      ]),
    ),
  )
  assert.ok(sends < count / 2, `${sends} sends for ${count} writes`)
  const records = await readAll(topic)
  assert.equal(records.length, count)
  const where = new Map(records.map((r) => [text(r), `${r.partition}@${r.offset}`]))
  acks.forEach((ack, i) => assert.equal(`${ack.partition}@${ack.offset}`, where.get(`v-${i}`), `write ${i}`))
})

test('with lingerMs, writes spread over the linger share one send, which waits for the oldest to have lingered', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'gw-writer-linger', partitions: 3 })
  assert.ok(topic)
  const producer = createProducer({ brokers: brokers(), clientId: 'gw-writer-linger-test' })
  t.after(() => producer.close())
  const sentAt: number[] = []
  const counting: KafkaProducer = {
    ...producer,
    send(records: readonly OutgoingRecord[]) {
      sentAt.push(performance.now())
      return producer.send(records)
    },
  }
  const writer = createCommandWriter({ producer: counting, partitionCount: () => 3, lingerMs: 1000 })
  const started = performance.now()
  const acks: Array<Promise<unknown>> = []
  // Five writes 10 ms apart, all well within the first write's linger.
  for (let i = 0; i < 5; i++) {
    acks.push(writer.write([{ topic, key: `key-${i}`, value: `v-${i}` }]))
    await new Promise((r) => setTimeout(r, 10))
  }
  await Promise.all(acks)
  assert.equal(sentAt.length, 1, 'one send for the five writes')
  assert.ok((sentAt[0] as number) - started >= 990, `sent ${Math.round((sentAt[0] as number) - started)} ms after the first write`)
  assert.equal((await readAll(topic)).length, 5)
  // flush() does not wait out a linger (of a minute here).
  const patient = createCommandWriter({ producer: counting, partitionCount: () => 3, lingerMs: 60_000 })
  const flushStarted = performance.now()
  const last = patient.write([{ topic, key: 'key-last', value: 'v-last' }])
  await patient.flush()
  await last
  assert.ok(performance.now() - flushStarted < 30_000, 'flush sends at once')
})
