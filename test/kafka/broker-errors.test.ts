// What the broker answered reaches weir's coded error: its error name, numeric code and text in the message and
// in details.brokerErrors, with the client's error kept as the cause (the client's own message says only
// "Producing messages failed").
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { createProducer } from '../../kafka/index.ts'
import { brokers, closeAdmin, createTopics } from '../helpers/kafka.ts'

after(closeAdmin)

test('a record over max.message.bytes is refused with MESSAGE_TOO_LARGE named in the WeirError', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'broker-errors', partitions: 1, configs: { 'max.message.bytes': '10000' } })
  assert.ok(topic)
  const producer = createProducer({ brokers: brokers() })
  t.after(() => producer.close())
  await assert.rejects(producer.send([{ topic, key: 'k', value: Buffer.alloc(20_000) }]), (error: unknown) => {
    assert.ok(isWeirError(error, 'WEIR_ERR_KAFKA'), String(error))
    assert.match(error.message, /^send: Producing messages failed\. broker: MESSAGE_TOO_LARGE \(10\): The request included a message larger than/)
    assert.deepEqual(error.details.brokerErrors, [{ name: 'MESSAGE_TOO_LARGE', code: 10, message: (error.details.brokerErrors as Array<{ message: string }>)[0]?.message, retriable: false }])
    assert.ok(error.cause instanceof Error, 'the client error is the cause')
    assert.match(JSON.stringify(error), /MESSAGE_TOO_LARGE/, 'and it logs as JSON')
    return true
  })
})
