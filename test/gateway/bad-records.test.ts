// Records on a results or events topic that are not envelopes (another producer's bytes, a schema it does not
// know, a tombstone): the gateway skips them, live and in replays, reports them (weir:envelope:rejected and
// weir_gateway_records_rejected_total), and goes on serving; the envelopes around them are delivered.
import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { after, test } from 'node:test'

import { pack } from 'msgpackr'

import { channelNames } from '../../core/diagnostics.ts'
import type { EnvelopeRejectedMessage } from '../../core/diagnostics.ts'
import { encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope, followUp } from '../../envelope/envelope.ts'
import type { OutgoingRecord } from '../../kafka/index.ts'
import { closeAdmin, produce } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { createGatewayTopics, openSocket, startGateway, startTestWorker, testCatalog, token } from './helpers.ts'

after(closeAdmin)

const junk = (topic: string): OutgoingRecord[] => [
  { topic, partition: 0, key: 'junk', value: 'not an envelope' },
  { topic, partition: 0, key: 'junk', value: pack({ v: 1, kind: 'result' }) },
  { topic, partition: 0, key: 'junk', value: pack({ v: 99, id: 'x' }) },
  { topic, partition: 0, key: 'junk', value: null },
]

test('non-envelope records on results and events topics are skipped and reported, live and in a replay; the gateway goes on', async (t) => {
  const topics = await createGatewayTopics(t, 1)
  const worker = await startTestWorker(t, topics)
  const gateway = await startGateway(t, { catalog: testCatalog(topics) })
  const rejected: EnvelopeRejectedMessage[] = []
  const listener = (message: unknown) => {
    const m = message as EnvelopeRejectedMessage
    if (m.source?.topic === topics.results || m.source?.topic === topics.events) rejected.push(m)
  }
  diagnostics.subscribe(channelNames.envelopeRejected, listener)
  t.after(() => diagnostics.unsubscribe(channelNames.envelopeRejected, listener))

  const nonce = 'bad-records-nonce-0123456789'
  const aliceToken = await token({ sub: 'alice' })
  const socket = await openSocket(t, gateway.port, { token: aliceToken, session: nonce })
  socket.send({ type: 'resume', offsets: [] })
  socket.send({ type: 'subscribe', topic: 'orders' })
  const resumed = await socket.expect('resumed')
  const subscribed = await socket.expect('subscribed')
  socket.send({ type: 'command', path: 'orders/sales/place', requestId: 'b-1', payload: { orderId: 'o-1', qty: 1 } })
  const command = await worker.command((c) => c.requestId === 'b-1')

  // Junk before and after an envelope, in one send: one fetched batch, so a crash on the junk would lose the rest.
  const result = followUp(command, { kind: 'result', alias: command.alias, payload: { n: 1 }, status: 'ok' })
  const event = createEnvelope({ kind: 'event', contextPath: 'sales', alias: 'order-placed', topicAlias: 'orders', payload: { e: 1 } })
  await produce([
    ...junk(topics.results),
    { topic: topics.results, partition: 0, key: 'b-1', value: encodeEnvelope(result) },
    ...junk(topics.results),
    ...junk(topics.events),
    { topic: topics.events, partition: 0, value: encodeEnvelope(event) },
    ...junk(topics.events),
  ])
  assert.deepEqual((await socket.expect('result', (f) => f.requestId === 'b-1')).payload, { n: 1 })
  assert.deepEqual((await socket.expect('event')).payload, { e: 1 })

  // Three of each four junk records are reported (a tombstone is no envelope, and no error either), with where they are.
  const perTopic = (topic: string) => rejected.filter((m) => m.source?.topic === topic)
  await waitFor(() => rejected.length >= 12, { what: 'the junk reported' })
  assert.equal(perTopic(topics.results).length, 6)
  assert.equal(perTopic(topics.events).length, 6)
  assert.ok(rejected.every((m) => m.source?.partition === 0 && typeof m.source.offset === 'bigint' && typeof m.error.code === 'string'))
  const metrics = await gateway.metrics.registry.getSingleMetricAsString('weir_gateway_records_rejected_total')
  assert.match(metrics, /weir_gateway_records_rejected_total\{[^}]*\} 12$/m)

  // Still serving: a command and its result.
  socket.send({ type: 'command', path: 'orders/sales/place', requestId: 'b-2', payload: { orderId: 'o-2', qty: 1 } })
  await worker.reply(await worker.command((c) => c.requestId === 'b-2'), { n: 2 })
  await socket.expect('result', (f) => f.requestId === 'b-2')

  // A replay over the same range skips the junk too.
  const again = await openSocket(t, gateway.port, { token: aliceToken, session: nonce })
  again.send({ type: 'resume', offsets: [...resumed.positions, ...subscribed.positions] })
  again.send({ type: 'subscribe', topic: 'orders' })
  assert.equal((await again.expect('resumed')).replayed, 2)
  assert.equal((await again.expect('subscribed')).replayed, 1)
  assert.deepEqual(
    again.frames.filter((f) => f.type === 'result').map((f) => f.requestId),
    ['b-1', 'b-2'],
  )
  assert.deepEqual(
    again.frames.filter((f) => f.type === 'event').map((f) => f.payload),
    [{ e: 1 }],
  )
  assert.equal(again.frames.filter((f) => f.type === 'error').length, 0)
})
