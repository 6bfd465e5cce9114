// Records a client has not seen yet are deleted from Kafka (retention; here the admin DeleteRecords API moves the
// log start offset): the gateway's replay, reading the real broker, tells the client which range is gone with a
// `gap` frame (the SDK's onGap) and replays the rest, once.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { connect } from '../../gateway/client.ts'
import type { GatewayClient } from '../../gateway/client.ts'
import type { EventFrame, GapFrame, ResultFrame, TimeoutFrame } from '../../gateway/protocol.ts'
import { decodeEnvelope } from '../../envelope/codec.ts'
import { admin, closeAdmin, readAll } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { createGatewayTopics, produceEvents, spawnGateway, startGateway, startTestWorker, testCatalog, token } from './helpers.ts'

after(closeAdmin)

test('results and events deleted below a client\'s offsets: its resume and subscribe get gap frames (onGap), then the rest once', async (t) => {
  const topics = await createGatewayTopics(t, 1)
  const worker = await startTestWorker(t, topics)
  const gateway = await startGateway(t, { catalog: testCatalog(topics) })
  const url = `ws://127.0.0.1:${gateway.port}/ws`
  const aliceToken = await token({ sub: 'alice' })

  const first = await connect({ url, token: aliceToken, reconnect: false })
  const firstEvents: EventFrame[] = []
  first.subscribe('orders', (event) => firstEvents.push(event))
  await waitFor(() => first.offsets().some((p) => p.topic === topics.events), { what: 'the subscription' })
  const sent = [1, 2, 3, 4].map((n) => first.send('orders/sales/place', { orderId: `o-${n}`, qty: 1 }, { requestId: `g-${n}` }))
  for (const n of [2, 3, 4]) sent[n - 1]?.catch(() => {}) // rejected when this client closes
  await worker.reply(await worker.command((c) => c.requestId === 'g-1'), { n: 1 })
  await sent[0]
  await produceEvents(topics.events, [{ e: 1 }])
  await waitFor(() => firstEvents.length === 1, { what: 'the first event' })
  for (const n of [2, 3, 4]) await worker.command((c) => c.requestId === `g-${n}`)
  const offsets = first.offsets()
  const nonce = first.sessionNonce as string
  first.close()

  // While the client is away: three results and three events, and then the oldest of each are deleted.
  for (const n of [2, 3, 4]) await worker.reply(await worker.command((c) => c.requestId === `g-${n}`), { n })
  await produceEvents(topics.events, [{ e: 2 }, { e: 3 }, { e: 4 }])
  const resultAt = new Map((await readAll(topics.results)).map((r) => [decodeEnvelope(r.value as Buffer).requestId, r.offset]))
  const eventAt = new Map((await readAll(topics.events)).map((r) => [(decodeEnvelope(r.value as Buffer).payload as { e: number }).e, r.offset]))
  const resultsFrom = offsets.find((p) => p.topic === topics.results)?.offset
  const eventsFrom = offsets.find((p) => p.topic === topics.events)?.offset
  assert.equal(resultsFrom, ((resultAt.get('g-1') as bigint) + 1n).toString())
  assert.equal(eventsFrom, ((eventAt.get(1) as bigint) + 1n).toString())
  assert.equal(await admin().deleteRecords(topics.results, 0, resultAt.get('g-3') as bigint), resultAt.get('g-3'))
  assert.equal(await admin().deleteRecords(topics.events, 0, eventAt.get(3) as bigint), eventAt.get(3))

  const gaps: GapFrame[] = []
  const results: Array<ResultFrame | TimeoutFrame> = []
  const events: EventFrame[] = []
  // Where the client's offset of the gap's partition is when onGap runs (known once connect() returned).
  const atGap: Array<string | undefined> = []
  const connected: { client?: GatewayClient } = {}
  const onGap = (gap: GapFrame) => {
    gaps.push(gap)
    atGap.push(connected.client?.offsets().find((p) => p.topic === gap.topic && p.partition === gap.partition)?.offset)
  }
  const second = await connect({ url, token: aliceToken, sessionNonce: nonce, offsets, onGap, onResult: (result) => results.push(result) })
  connected.client = second
  t.after(() => second.close())
  second.subscribe('orders', (event) => events.push(event))
  await waitFor(() => results.length >= 2 && events.length >= 2, { what: 'the results and events that are left' })

  assert.deepEqual(
    gaps.map((g) => ({ ...g })),
    [
      { type: 'gap', topic: topics.results, partition: 0, from: resultsFrom, to: (resultAt.get('g-3') as bigint).toString() },
      { type: 'gap', topic: topics.events, partition: 0, from: eventsFrom, to: (eventAt.get(3) as bigint).toString() },
    ],
  )
  assert.deepEqual(
    results.map((r) => r.requestId),
    ['g-3', 'g-4'],
  )
  assert.deepEqual(
    events.map((e) => e.payload),
    [{ e: 3 }, { e: 4 }],
  )
  // The SDK moved its offset past the gap before telling: a reconnect now would not ask for the lost range again.
  assert.equal(atGap[1], (eventAt.get(3) as bigint).toString())
  // Live from there on, and the client's offsets went past the gap.
  await produceEvents(topics.events, [{ e: 5 }])
  await waitFor(() => events.length === 3, { what: 'a live event' })
  assert.deepEqual(events[2]?.payload, { e: 5 })
  const now = second.offsets()
  assert.equal(now.find((p) => p.topic === topics.results)?.offset, ((resultAt.get('g-4') as bigint) + 1n).toString())
  assert.deepEqual(gaps.length, 2)
  assert.deepEqual(results.length, 2)
})

test('records deleted before the live stream read them: subscribers get a gap frame (onGap), then live events again', async (t) => {
  const topics = await createGatewayTopics(t, 1)
  const gateway = await spawnGateway(t, topics)
  const gaps: GapFrame[] = []
  const client = await connect({ url: `ws://127.0.0.1:${gateway.port}/ws`, token: await token({ sub: 'alice' }), onGap: (gap) => gaps.push(gap) })
  t.after(() => client.close())
  const events: EventFrame[] = []
  client.subscribe('orders', (event) => events.push(event))
  await waitFor(() => client.offsets().some((p) => p.topic === topics.events), { what: 'the subscription' })
  const start = BigInt(client.offsets().find((p) => p.topic === topics.events)?.offset as string)

  // The gateway process is stopped while records are written and deleted. A fetch it had sent before may have been
  // answered with the first send's records (they are delivered); the second send's cannot be in that answer.
  gateway.child.kill('SIGSTOP')
  t.after(() => gateway.child.kill('SIGCONT'))
  await produceEvents(topics.events, [{ e: 1 }, { e: 2 }])
  await produceEvents(topics.events, [{ e: 3 }, { e: 4 }])
  const end = (await admin().endOffsets(topics.events)).find((p) => p.partition === 0)?.offset as bigint
  assert.equal(await admin().deleteRecords(topics.events, 0, end), end)
  gateway.child.kill('SIGCONT')

  await waitFor(() => gaps.length === 1, { what: 'the gap frame' })
  const [gap] = gaps as [GapFrame]
  assert.equal(gap.topic, topics.events)
  assert.equal(gap.to, end.toString())
  const delivered = events.map((e) => (e.payload as { e: number }).e)
  t.diagnostic(`the stopped gateway had ${delivered.length === 0 ? 'no' : 'the first send\'s'} records in hand`)
  if (delivered.length === 0) assert.equal(gap.from, start.toString())
  else {
    assert.deepEqual(delivered, [1, 2])
    assert.equal(gap.from, (start + 2n).toString())
  }
  await produceEvents(topics.events, [{ e: 5 }])
  await waitFor(() => events.some((e) => (e.payload as { e: number }).e === 5), { what: 'a live event after the gap' })
  assert.deepEqual(
    events.map((e) => (e.payload as { e: number }).e),
    [...delivered, 5],
  )
  assert.equal(client.offsets().find((p) => p.topic === topics.events)?.offset, (end + 1n).toString())
})
