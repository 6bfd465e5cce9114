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
