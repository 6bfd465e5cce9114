// The client SDK against real gateways and a real broker: send/outcomes, subscriptions, and automatic
// reconnect with resume across gateway instances.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { connect } from '../../gateway/client.ts'
import { parseServerFrame } from '../../gateway/protocol.ts'
import type { AckFrame, EventFrame, ServerFrame } from '../../gateway/protocol.ts'
import { closeAdmin } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { HS256_SECRET, createGatewayTopics, produceEvents, startGateway, startTestWorker, testCatalog, token } from './helpers.ts'

after(closeAdmin)

test('send resolves with the result, rejects with coded errors and timeouts; subscribe delivers events', async (t) => {
  const topics = await createGatewayTopics(t)
  const worker = await startTestWorker(t, topics)
  const gateway = await startGateway(t, { catalog: testCatalog(topics) })
  const client = await connect({ url: `ws://127.0.0.1:${gateway.port}/ws`, token: await token({ sub: 'alice' }), encoding: 'msgpack' })
  t.after(() => client.close())
  assert.equal(client.state, 'open')
  assert.match(client.sessionId ?? '', /^s_/)

  const events: EventFrame[] = []
  client.subscribe('orders', (event) => events.push(event))

  const acks: AckFrame[] = []
  const onAck = (ack: AckFrame) => acks.push(ack)
  const sentAt = Date.now()
  const placed = client.send('orders/sales/place', { orderId: 'o-1', qty: 1 }, { requestId: 'c-1', ttlMs: 5000, onAck })
  await worker.reply(await worker.command((c) => c.requestId === 'c-1'), { placed: 'o-1' })
  const result = await placed
  assert.deepEqual(result.payload, { placed: 'o-1' })
  // The ack came before the result and says where the command is and when its deadline falls.
  assert.equal(acks.length, 1)
  assert.equal(acks[0]?.requestId, 'c-1')
  assert.equal(acks[0]?.topic, topics.commands)
  assert.ok(Number(acks[0]?.offset) >= 0)
  assert.ok(acks[0]?.deadline !== undefined && acks[0].deadline >= sentAt + 5000 && acks[0].deadline <= Date.now() + 5000)

  await assert.rejects(client.send('orders/sales/unknown', {}, { onAck }), (e) => isWeirError(e) && (e.code as string) === 'WEIR_ERR_UNKNOWN_COMMAND')
  await assert.rejects(client.send('orders/sales/place', { qty: 'x' }, { onAck }), (e) => isWeirError(e) && (e.code as string) === 'WEIR_ERR_SCHEMA_VIOLATION')
  assert.equal(acks.length, 1, 'a refused command is never acked')

  // How the SDK settles a timeout outcome and a handler's error result (here written by the fake worker; the real
  // deadline arbiter's timeout, against the orders service, is in real-worker.test.ts).
  // The expectations are attached before the replies: a rejection that settles while the test awaits the reply is
  // then handled, never an unhandled rejection.
  const timedOut = assert.rejects(client.send('orders/sales/place', { orderId: 'o-2', qty: 1 }, { requestId: 'c-timeout' }), (e) => isWeirError(e, 'WEIR_ERR_DEADLINE_EXCEEDED'))
  await worker.reply(await worker.command((c) => c.requestId === 'c-timeout'), { code: 'WEIR_ERR_DEADLINE_EXCEEDED' }, 'timeout')
  await timedOut
  const failed = assert.rejects(client.send('orders/sales/place', { orderId: 'o-3', qty: 1 }, { requestId: 'c-error' }), (e) => isWeirError(e, 'WEIR_ERR_NON_RETRIABLE') && e.message === 'out of stock')
  await worker.reply(await worker.command((c) => c.requestId === 'c-error'), { code: 'WEIR_ERR_NON_RETRIABLE', message: 'out of stock' }, 'error')
  await failed

  await produceEvents(topics.events, [{ e: 1 }, { e: 2 }])
  await waitFor(() => events.length === 2, { what: 'two events' })
  assert.deepEqual(
    events.map((e) => e.payload),
    [{ e: 1 }, { e: 2 }],
  )
})

test('callbacks that throw go to onError as WEIR_ERR_CALLBACK; the client goes on (the send settles, other handlers run)', async (t) => {
  const topics = await createGatewayTopics(t)
  const worker = await startTestWorker(t, topics)
  const gateway = await startGateway(t, { catalog: testCatalog(topics) })
  const errors: unknown[] = []
  const states: string[] = []
  const client = await connect({
    url: `ws://127.0.0.1:${gateway.port}/ws`,
    token: await token({ sub: 'alice' }),
    onError: (error) => errors.push(error),
    onStateChange: (state) => {
      states.push(state)
      throw new Error(`state handler broke on ${state}`)
    },
  })
  t.after(() => client.close())
  const received: EventFrame[] = []
  client.subscribe('orders', () => {
    throw new Error('first handler broke')
  })
  client.subscribe('orders', (event) => received.push(event))

  const placed = client.send('orders/sales/place', { orderId: 'o-cb', qty: 1 }, {
    requestId: 'c-cb',
    onAck: () => {
      throw new Error('ack handler broke')
    },
  })
  await worker.reply(await worker.command((c) => c.requestId === 'c-cb'), { placed: 'o-cb' })
  assert.deepEqual((await placed).payload, { placed: 'o-cb' })
  await produceEvents(topics.events, [{ e: 1 }])
  await waitFor(() => received.length === 1, { what: 'the second handler got the event' })

  // The reconnect still works although onStateChange throws on every change.
  client.reconnect()
  await waitFor(() => client.state === 'open' && states.filter((s) => s === 'open').length >= 2, { what: 'open again after reconnect' })
  const messages = errors.map((e) => (isWeirError(e, 'WEIR_ERR_CALLBACK') ? e.message : `unexpected: ${String(e)}`))
  assert.ok(messages.includes('the onAck callback threw: ack handler broke'), messages.join('; '))
  assert.ok(messages.includes('the event handler callback threw: first handler broke'), messages.join('; '))
  assert.ok(messages.some((m) => m.startsWith('the onStateChange callback threw: state handler broke on')), messages.join('; '))
  assert.ok(errors.every((e) => isWeirError(e, 'WEIR_ERR_CALLBACK')), messages.join('; '))
})

test('no outcome by the deadline plus the grace period rejects with WEIR_ERR_TIMEOUT', async (t) => {
  const topics = await createGatewayTopics(t)
  const gateway = await startGateway(t, { catalog: testCatalog(topics) })
  const client = await connect({ url: `ws://127.0.0.1:${gateway.port}/ws`, token: await token(), outcomeGraceMs: 200 })
  t.after(() => client.close())
  await assert.rejects(client.send('orders/sales/place', { orderId: 'o', qty: 1 }, { ttlMs: 300 }), (e) => isWeirError(e, 'WEIR_ERR_TIMEOUT'))
})

test('reconnect() drops the connection, connects again at once and settles what was in flight exactly once', async (t) => {
  const topics = await createGatewayTopics(t)
  const worker = await startTestWorker(t, topics)
  const gateway = await startGateway(t, { catalog: testCatalog(topics) })
  const states: string[] = []
  const client = await connect({ url: `ws://127.0.0.1:${gateway.port}/ws`, token: await token({ sub: 'carol' }), onStateChange: (s) => states.push(s) })
  t.after(() => client.close())
  const session = client.sessionId
  const inFlight = client.send('orders/sales/place', { orderId: 'o-r', qty: 1 }, { requestId: 'c-reconnect', ttlMs: 10_000 })
  const command = await worker.command((c) => c.requestId === 'c-reconnect')
  client.reconnect()
  assert.equal(client.state, 'reconnecting')
  // The result is produced while the client is between connections: the resume replays it.
  await worker.reply(command, { placed: 'o-r' })
  assert.deepEqual((await inFlight).payload, { placed: 'o-r' })
  await waitFor(() => client.state === 'open', { what: 'open again' })
  assert.equal(client.sessionId, session)
  assert.deepEqual(states.slice(-2), ['reconnecting', 'open'])
  const next = client.send('orders/sales/place', { orderId: 'o-s', qty: 1 }, { requestId: 'c-after', ttlMs: 10_000 })
  await worker.reply(await worker.command((c) => c.requestId === 'c-after'), { placed: 'o-s' })
  assert.deepEqual((await next).payload, { placed: 'o-s' })
})

test('the client reconnects to a new instance, resumes, and settles what it sent before the restart', async (t) => {
  const topics = await createGatewayTopics(t)
  const catalog = testCatalog(topics)
  const worker = await startTestWorker(t, topics)
  let gateway = await startGateway(t, { catalog })
  const states: string[] = []
  const client = await connect({
    url: () => `ws://127.0.0.1:${gateway.port}/ws`,
    token: () => token({ sub: 'alice' }),
    reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    onStateChange: (s) => states.push(s),
  })
  t.after(() => client.close())
  const sessionId = client.sessionId
  const events: EventFrame[] = []
  client.subscribe('orders', (event) => events.push(event))
  const first = client.send('orders/sales/place', { orderId: 'o-1', qty: 1 }, { requestId: 'k-1' })
  const second = client.send('orders/sales/place', { orderId: 'o-2', qty: 1 }, { requestId: 'k-2' })
  await worker.reply(await worker.command((c) => c.requestId === 'k-1'), { n: 1 })
  await first
  await worker.command((c) => c.requestId === 'k-2')
  await produceEvents(topics.events, [{ e: 1 }])
  await waitFor(() => events.length === 1, { what: 'the first event' })

  await gateway.close()
  await waitFor(() => client.state === 'reconnecting', { what: 'the client to notice' })
  // While no gateway runs: k-2's result and two events; and a command sent while disconnected.
  await worker.reply(await worker.command((c) => c.requestId === 'k-2'), { n: 2 })
  await produceEvents(topics.events, [{ e: 2 }, { e: 3 }])
  const third = client.send('orders/sales/place', { orderId: 'o-3', qty: 1 }, { requestId: 'k-3' })

  gateway = await startGateway(t, { catalog })
  assert.deepEqual((await second).payload, { n: 2 })
  assert.equal(client.sessionId, sessionId)
  await worker.reply(await worker.command((c) => c.requestId === 'k-3'), { n: 3 })
  assert.deepEqual((await third).payload, { n: 3 })
  await produceEvents(topics.events, [{ e: 4 }])
  // Events of one partition arrive in order: once the last one is here, any copy of an earlier one would be too.
  await waitFor(() => events.some((e) => (e.payload as { e: number }).e === 4), { what: 'the fourth event' })
  assert.deepEqual(
    events.map((e) => e.payload),
    [{ e: 1 }, { e: 2 }, { e: 3 }, { e: 4 }],
  )
  assert.ok(states.includes('reconnecting') && states.at(-1) === 'open')
  // k-3 was produced once although it was queued while disconnected.
  assert.equal(worker.commands.filter((c) => c.requestId === 'k-3').length, 1)
})

test('the SDK refreshes its token before expiry over the open connection', async (t) => {
  const topics = await createGatewayTopics(t)
  const toleranceSec = 1
  const gateway = await startGateway(t, { catalog: testCatalog(topics), auth: { hs256Secret: HS256_SECRET, clockToleranceSec: toleranceSec } })
  // What the gateway tells this client, seen through the SDK's own WebSocket.
  const frames: ServerFrame[] = []
  class RecordingWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols)
      this.addEventListener('message', (event: MessageEvent) => {
        const frame = typeof event.data === 'string' ? parseServerFrame(event.data, false) : undefined
        if (frame !== undefined) frames.push(frame)
      })
    }
  }
  let issued = 0
  const states: string[] = []
  const client = await connect({
    url: `ws://127.0.0.1:${gateway.port}/ws`,
    token: () => {
      issued++
      return token({ sub: 'alice', expiresInSec: 6 })
    },
    // About every 2 s, with 4 s to spare before each token expires.
    refreshBeforeExpiryMs: 4000,
    onStateChange: (s) => states.push(s),
    WebSocket: RecordingWebSocket,
  })
  t.after(() => client.close())
  const welcome = frames.find((f) => f.type === 'welcome')
  assert.ok(welcome?.type === 'welcome' && welcome.expiresAt !== undefined)
  // Two refreshes the gateway accepted, then past the first token's expiry plus the tolerance and the gateway's
  // next check (it checks every second): without the refreshes it would have closed the connection with 4001.
  const refreshed = () => frames.filter((f) => f.type === 'authenticated').map((f) => f.expiresAt ?? 0)
  await waitFor(() => refreshed().length >= 2, { what: 'two accepted refreshes', timeoutMs: 30_000 })
  await waitFor(() => Date.now() > (welcome.expiresAt as number) + toleranceSec * 1000 + 2000, { what: 'the first token to be expired for the gateway', timeoutMs: 30_000 })
  assert.equal(client.state, 'open')
  assert.deepEqual(states, ['open'])
  assert.equal(frames.filter((f) => f.type === 'welcome').length, 1, 'one connection throughout')
  assert.ok(refreshed().every((expiresAt) => expiresAt > (welcome.expiresAt as number)), 'each refresh moved the expiry on')
  assert.ok(issued >= 3, `tokens issued: ${issued}`)
})
