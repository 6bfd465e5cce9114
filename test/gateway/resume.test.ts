// Resume without loss: a client reconnects (to another gateway instance) with its last offsets and gets
// exactly what it missed, then live delivery, with no gap and no duplicate.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { connect } from '../../gateway/client.ts'
import type { EventFrame, FrameOffset, ServerFrame } from '../../gateway/protocol.ts'
import { admin, closeAdmin } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { createGatewayTopics, openSocket, produceEvents, spawnGateway, startGateway, startTestWorker, testCatalog, token } from './helpers.ts'
import type { TestSocket } from './helpers.ts'

after(closeAdmin)

/** What a client keeps: per topic/partition the next offset it wants (positions frames, then delivered offsets). */
function cursors(...sockets: TestSocket[]): FrameOffset[] {
  const next = new Map<string, FrameOffset>()
  const bump = (p: FrameOffset) => {
    const key = `${p.topic}/${p.partition}`
    const current = next.get(key)
    if (current === undefined || BigInt(p.offset) > BigInt(current.offset)) next.set(key, p)
  }
  for (const frame of sockets.flatMap((s) => s.frames)) {
    if (frame.type === 'resumed' || frame.type === 'subscribed') frame.positions.forEach(bump)
    if (frame.type === 'result' || frame.type === 'timeout' || frame.type === 'event') {
      bump({ topic: frame.topic, partition: frame.partition, offset: (BigInt(frame.offset) + 1n).toString() })
    }
  }
  return [...next.values()]
}

const payloadsOf = (socket: TestSocket, type: ServerFrame['type']) =>
  socket.frames.filter((f) => f.type === type).map((f) => (f as { payload: unknown; requestId: string }))

test('a client resumes on a new instance after the old one closed: missed results and events once, in order, then live', async (t) => {
  const topics = await createGatewayTopics(t)
  const catalog = testCatalog(topics)
  const worker = await startTestWorker(t, topics)
  const nonce = 'resume-nonce-0123456789'
  const aliceToken = await token({ sub: 'alice' })

  const first = await startGateway(t, { catalog })
  const before = await openSocket(t, first.port, { token: aliceToken, session: nonce })
  before.send({ type: 'resume', offsets: [] })
  before.send({ type: 'subscribe', topic: 'orders' })
  await before.expect('resumed')
  await before.expect('subscribed')
  const bob = await openSocket(t, first.port, { token: await token({ sub: 'bob' }) })
  for (const n of [1, 2, 3, 4]) {
    before.send({ type: 'command', path: 'orders/sales/place', requestId: `a-${n}`, payload: { orderId: `o-${n % 2}`, qty: n } })
    bob.send({ type: 'command', path: 'orders/sales/place', requestId: `b-${n}`, payload: { orderId: `o-${n % 2}`, qty: n } })
    await before.expect('ack', (f) => f.requestId === `a-${n}`)
  }
  await worker.reply(await worker.command((c) => c.requestId === 'a-1'), { n: 1 })
  await produceEvents(topics.events, [{ e: 1 }])
  await before.expect('result', (f) => f.requestId === 'a-1')
  await before.expect('event')

  await first.close()
  const closed = await before.closed
  assert.equal(closed.code, 1001)

  // While no gateway runs: results for Alice and Bob on both partitions, and events.
  for (const n of [2, 3]) {
    await worker.reply(await worker.command((c) => c.requestId === `a-${n}`), { n })
    await worker.reply(await worker.command((c) => c.requestId === `b-${n}`), { n })
  }
  await produceEvents(topics.events, [{ e: 2 }, { e: 3 }])

  const second = await startGateway(t, { catalog })
  const after = await openSocket(t, second.port, { token: aliceToken, session: nonce })
  assert.equal((await after.expect('welcome')).sessionId, (await before.expect('welcome')).sessionId)
  after.send({ type: 'resume', offsets: cursors(before) })
  after.send({ type: 'subscribe', topic: 'orders' })
  const resumed = await after.expect('resumed')
  const subscribed = await after.expect('subscribed')
  assert.equal(resumed.replayed, 2)
  assert.equal(subscribed.replayed, 2)

  // Live again, on the new instance.
  await worker.reply(await worker.command((c) => c.requestId === 'a-4'), { n: 4 })
  await produceEvents(topics.events, [{ e: 4 }])
  await after.expect('result', (f) => f.requestId === 'a-4')
  await after.expect('event', (f) => (f.payload as { e: number }).e === 4)

  const results = payloadsOf(after, 'result').map((f) => f.requestId)
  assert.deepEqual(results.slice(0, 2).sort(), ['a-2', 'a-3'])
  assert.deepEqual(results, [...results.slice(0, 2), 'a-4'])
  assert.deepEqual(payloadsOf(after, 'event').map((f) => f.payload), [{ e: 2 }, { e: 3 }, { e: 4 }])
  // Replayed frames came before the switch to live; the live one after it.
  const order = after.frames.map((f) => f.type)
  assert.ok(order.indexOf('resumed') > order.indexOf('result') && order.lastIndexOf('result') > order.indexOf('resumed'))
  // Every delivered frame is new to the client: no offset it already had.
  const seen = new Set([...before.frames, ...after.frames].flatMap((f) => ('offset' in f && f.type !== 'ack' ? [`${f.topic}/${f.partition}/${f.offset}`] : [])))
  const delivered = [...before.frames, ...after.frames].filter((f) => f.type === 'result' || f.type === 'event').length
  assert.equal(seen.size, delivered)
})

test('a resume while results keep arriving hands over from replay to live without gap or duplicate', async (t) => {
  const topics = await createGatewayTopics(t)
  const catalog = testCatalog(topics)
  const worker = await startTestWorker(t, topics)
  const gateway = await startGateway(t, { catalog, checkpointIntervalMs: 200 })
  const nonce = 'race-nonce-0123456789abc'
  const aliceToken = await token({ sub: 'alice' })
  const first = await openSocket(t, gateway.port, { token: aliceToken, session: nonce })
  first.send({ type: 'resume', offsets: [] })
  const start = await first.expect('resumed')
  const total = 40
  const afterSwitch = 5
  for (let n = 0; n < total; n++) {
    first.send({ type: 'command', path: 'orders/sales/place', requestId: `r-${n}`, payload: { orderId: `o-${n}`, qty: 1 } })
  }
  await first.expect('ack', (f) => f.requestId === `r-${total - 1}`)
  first.close()
  await first.closed

  let answered = 0
  const answer = async () => {
    await worker.reply(await worker.command((c) => c.requestId === `r-${answered}`), { n: answered })
    answered++
  }
  // Ten results exist before the resume: they can only be replayed.
  while (answered < 10) await answer()
  const second = await openSocket(t, gateway.port, { token: aliceToken, session: nonce })
  second.send({ type: 'resume', offsets: start.positions })
  // More are produced while it replays; which side of the switch each of these lands on is the race.
  while (answered < total - afterSwitch) await answer()
  const resumed = await second.expect('resumed')
  // The last ones are produced after the switch: they can only be delivered live.
  while (answered < total) await answer()
  await second.expect('result', (f) => f.requestId === `r-${total - 1}`)
  const ends = await admin().endOffsets(topics.results)
  await second.expect('checkpoint', (f) => ends.every((end) => BigInt(f.positions.find((p) => p.partition === end.partition)?.offset ?? '-1') >= end.offset))

  const results = second.frames.filter((f) => f.type === 'result')
  const ids = results.map((f) => f.requestId)
  assert.equal(ids.length, total, `got ${ids.join(',')}`)
  assert.equal(new Set(ids).size, total)
  // The handover happened: the frames before `resumed` are exactly the replayed ones, the rest came live.
  const switchedAt = second.frames.indexOf(resumed)
  const replayed = second.frames.slice(0, switchedAt).filter((f) => f.type === 'result').length
  assert.equal(resumed.replayed, replayed)
  assert.ok(replayed >= 10, `${replayed} replayed: the results produced before the resume must be`)
  assert.ok(total - replayed >= afterSwitch, `${total - replayed} live: the results produced after the switch must be`)
  t.diagnostic(`${replayed - 10} of the ${total - 10 - afterSwitch} results produced during the replay were replayed, the others came live`)
  // Each partition's results arrived in offset order across the switch.
  for (const partition of new Set(results.map((f) => f.partition))) {
    const offsets = results.filter((f) => f.partition === partition).map((f) => BigInt(f.offset))
    assert.deepEqual(offsets, [...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), `partition ${partition} in order`)
  }
})

test('after the gateway process is killed (SIGKILL), the client SDK resumes on another instance with no gap and no duplicate', async (t) => {
  const topics = await createGatewayTopics(t)
  const worker = await startTestWorker(t, topics)
  const killed = await spawnGateway(t, topics)
  let port = killed.port
  const client = await connect({
    url: () => `ws://127.0.0.1:${port}/ws`,
    token: () => token({ sub: 'alice' }),
    reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
  })
  t.after(() => client.close())
  const events: EventFrame[] = []
  client.subscribe('orders', (event) => events.push(event))
  const answered = client.send('orders/sales/place', { orderId: 'o-1', qty: 1 }, { requestId: 'kill-1' })
  const pending = client.send('orders/sales/place', { orderId: 'o-2', qty: 1 }, { requestId: 'kill-2' })
  await worker.reply(await worker.command((c) => c.requestId === 'kill-1'), { n: 1 })
  await answered
  await worker.command((c) => c.requestId === 'kill-2')
  await produceEvents(topics.events, [{ e: 1 }])
  await waitFor(() => events.length === 1, { what: 'the first event' })

  killed.child.kill('SIGKILL')
  assert.equal(await killed.exited, 'SIGKILL')
  await waitFor(() => client.state === 'reconnecting', { what: 'the client to notice' })
  await worker.reply(await worker.command((c) => c.requestId === 'kill-2'), { n: 2 })
  await produceEvents(topics.events, [{ e: 2 }, { e: 3 }])

  const replacement = await startGateway(t, { catalog: testCatalog(topics) })
  port = replacement.port
  assert.deepEqual((await pending).payload, { n: 2 })
  await produceEvents(topics.events, [{ e: 4 }])
  // Events of one partition arrive in order: once the last one is here, any copy of an earlier one would be too.
  await waitFor(() => events.some((e) => (e.payload as { e: number }).e === 4), { what: 'the fourth event' })
  assert.deepEqual(
    events.map((e) => e.payload),
    [{ e: 1 }, { e: 2 }, { e: 3 }, { e: 4 }],
  )
})
