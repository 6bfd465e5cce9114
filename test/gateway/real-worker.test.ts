// The gateway against the real command service: the orders example (examples/orders) in the Kafka runtime,
// deadlines registered by the gateway and decided by the service's deadline arbiter, real WebSocket clients (the
// SDK where it fits, raw sockets where a test must send what the SDK never would). No fake worker anywhere.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { connect } from '../../gateway/client.ts'
import type { GatewayClient } from '../../gateway/client.ts'
import { commandId } from '../../gateway/frames.ts'
import type { EventFrame, FrameOffset, ResultFrame, TimeoutFrame } from '../../gateway/protocol.ts'
import type { Gateway } from '../../gateway/server.ts'
import { partitionFor } from '../../kafka/index.ts'
import type { TopicPartitionOffset } from '../../kafka/index.ts'
import { admin, closeAdmin, consume } from '../helpers/kafka.ts'
import { decodeEnvelope } from '../../envelope/codec.ts'
import { waitFor } from '../helpers/wait.ts'
import { cleanups, openSocket, spawnGateway, startGateway, token } from './helpers.ts'
import type { TestSocket } from './helpers.ts'
import { ORDERS_CATALOG_MODULE, startOrdersWorker } from './orders-worker.ts'
import type { OrdersWorker } from './orders-worker.ts'

const PARTITIONS = 2
let worker: OrdersWorker
let gateway: Gateway
const shared = cleanups()

before(async () => {
  worker = await startOrdersWorker(shared, { partitions: PARTITIONS })
  gateway = await startGateway(shared, { catalog: worker.catalog, deadlines: 'deadlines-topic', checkpointIntervalMs: 200 })
})

after(async () => {
  await shared.run()
  await closeAdmin()
})

const url = () => `ws://127.0.0.1:${gateway.port}/ws`

/** The committed end of the outcomes topic now: everything a client can ever be sent is below it. */
async function outcomesEnd(): Promise<TopicPartitionOffset[]> {
  return admin().endOffsets(worker.topics.outcomes, 'read_committed')
}

const covers = (positions: readonly FrameOffset[], ends: readonly TopicPartitionOffset[]) =>
  ends.every((end) => BigInt(positions.find((p) => p.topic === end.topic && p.partition === end.partition)?.offset ?? '-1') >= end.offset)

/** Waits until the gateway told this socket that every outcome below `ends` was delivered (a checkpoint). */
function deliveredUpTo(socket: TestSocket, ends: readonly TopicPartitionOffset[]) {
  return socket.expect('checkpoint', (f) => covers(f.positions, ends), 20_000)
}

/** The same for an SDK client: its offsets move on with checkpoints. */
function clientDeliveredUpTo(client: GatewayClient, ends: readonly TopicPartitionOffset[]) {
  return waitFor(() => covers(client.offsets(), ends), { what: 'a checkpoint past the outcomes written so far' })
}

const outcomesOf = async (requestId: string) => (await worker.read(worker.topics.outcomes)).filter((o) => o.envelope.requestId === requestId)
const lateOf = async (requestId: string) => (await worker.read(worker.topics.lateResults)).filter((o) => o.envelope.requestId === requestId)

test('a command through the gateway is run by the orders service: the SDK gets its result and its event; a handler error rejects with its code', async (t) => {
  const client = await connect({ url, token: await token({ sub: 'alice' }) })
  t.after(() => client.close())
  const events: EventFrame[] = []
  client.subscribe('orders', (event) => events.push(event))

  const placed = await client.send('orders/orders/place', { orderId: 'rw-1', sku: 'fig', qty: 2 }, { requestId: 'rw-place-1' })
  assert.equal(placed.status, 'ok')
  assert.equal((placed.payload as { status: string }).status, 'placed')
  await waitFor(() => events.some((e) => e.alias === 'order-placed' && (e.payload as { orderId: string }).orderId === 'rw-1'), { what: 'order-placed' })

  // Placing the same order again is a handler error (NonRetriableError), decided by the arbiter like any result.
  await assert.rejects(
    client.send('orders/orders/place', { orderId: 'rw-1', sku: 'fig', qty: 1 }, { requestId: 'rw-place-again' }),
    (e) => isWeirError(e, 'WEIR_ERR_NON_RETRIABLE') && /exists already/.test(e.message),
  )

  // The command's envelope id is derived from (session, requestId) (gateway/frames.ts commandId), and the
  // outcome the client got names that command as its cause.
  const sessionId = client.sessionId as string
  const written = (await worker.read(worker.topics.commands)).filter((c) => c.envelope.requestId === 'rw-place-1')
  assert.deepEqual(
    written.map((c) => c.envelope.id),
    [commandId(sessionId, 'rw-place-1')],
  )
  const [outcome, ...more] = await outcomesOf('rw-place-1')
  assert.equal(more.length, 0)
  assert.equal(outcome?.envelope.id, placed.id)
  assert.equal(outcome?.envelope.clientSessionId, sessionId)
  assert.deepEqual(
    outcome?.envelope.breadcrumbs.map((b) => b.id),
    [commandId(sessionId, 'rw-place-1')],
  )
})

test('the same requestId sent twice, and again after a reconnect, is processed once: one outcome, one event, one result frame', async (t) => {
  const aliceToken = await token({ sub: 'alice' })
  const nonce = 'real-worker-dup-0123456789'
  const first = await openSocket(t, gateway.port, { token: aliceToken, session: nonce })
  const { sessionId } = await first.expect('welcome')
  first.send({ type: 'resume', offsets: [] })
  const start = await first.expect('resumed')
  const command = { type: 'command', path: 'orders/orders/place', requestId: 'rw-dup', payload: { orderId: 'rw-dup-order', sku: 'pear', qty: 1 } } as const
  first.send(command)
  first.send(command)
  const acks = await waitFor(() => {
    const found = first.frames.filter((f) => f.type === 'ack' && f.requestId === 'rw-dup')
    return found.length === 2 ? found : undefined
  }, { what: 'both acks' })
  const result = await first.expect('result', (f) => f.requestId === 'rw-dup')
  assert.equal(result.status, 'ok', JSON.stringify(result.payload))

  // Both copies are on the commands topic with one envelope id; the service's dedupe dropped the second.
  const copies = (await worker.read(worker.topics.commands)).filter((c) => c.envelope.requestId === 'rw-dup')
  assert.equal(copies.length, 2)
  assert.deepEqual([...new Set(copies.map((c) => c.envelope.id))], [commandId(sessionId, 'rw-dup')])
  const afterCopies = (offsets: typeof copies) =>
    [...new Set(offsets.map((c) => c.record.partition))].map((partition) => ({
      topic: worker.topics.commands,
      partition,
      offset: offsets.filter((c) => c.record.partition === partition).reduce((max, c) => (c.record.offset > max ? c.record.offset : max), -1n) + 1n,
    }))
  assert.deepEqual(
    acks.map((a) => (a.type === 'ack' ? `${a.partition}@${a.offset}` : '')).sort(),
    copies.map((c) => `${c.record.partition}@${c.record.offset}`).sort(),
  )
  await worker.committedPast(afterCopies(copies))
  const outcomes = await outcomesOf('rw-dup')
  assert.equal(outcomes.length, 1, 'one outcome for both copies')
  // A second run would have failed (the order exists) and its result would have gone to the late results.
  assert.deepEqual(await lateOf('rw-dup'), [], 'no second run')
  const placedEvents = (await worker.read(worker.topics.events)).filter((e) => (e.envelope.payload as { orderId?: string }).orderId === 'rw-dup-order')
  assert.equal(placedEvents.length, 1, 'one order-placed event')
  await deliveredUpTo(first, await outcomesEnd())
  assert.equal(first.frames.filter((f) => (f.type === 'result' || f.type === 'timeout') && f.requestId === 'rw-dup').length, 1)
  first.close()
  await first.closed

  // A client that lost its connection before it saw anything sends the command again on its next connection
  // and resumes from its old positions: the one outcome is replayed, the third copy changes nothing.
  const second = await openSocket(t, gateway.port, { token: aliceToken, session: nonce })
  assert.equal((await second.expect('welcome')).sessionId, sessionId)
  second.send({ type: 'resume', offsets: start.positions })
  second.send(command)
  await second.expect('ack', (f) => f.requestId === 'rw-dup')
  const replayed = await second.expect('result', (f) => f.requestId === 'rw-dup')
  assert.deepEqual(replayed, result, 'the same outcome: the same record, id and payload')
  const all = (await worker.read(worker.topics.commands)).filter((c) => c.envelope.requestId === 'rw-dup')
  assert.equal(all.length, 3)
  await worker.committedPast(afterCopies(all))
  assert.equal((await outcomesOf('rw-dup')).length, 1)
  assert.deepEqual(await lateOf('rw-dup'), [])
  await deliveredUpTo(second, await outcomesEnd())
  assert.equal(second.frames.filter((f) => (f.type === 'result' || f.type === 'timeout') && f.requestId === 'rw-dup').length, 1)
})

test('a command slower than its TTL gets exactly one outcome, the arbiter\'s timeout, and never also its result', async (t) => {
  const strays: Array<ResultFrame | TimeoutFrame> = []
  const client = await connect({ url, token: await token({ sub: 'alice' }), onResult: (frame) => strays.push(frame) })
  t.after(() => client.close())
  const runsBefore = worker.slowRuns()
  let deadline: number | undefined
  // The handler starts after the command was made, so a run longer than the TTL always ends after the deadline;
  // the TTL itself is the margin for the command to reach the service before its deadline.
  const slow = client.send('orders/orders/slow', { ms: 2500 }, { requestId: 'rw-slow', ttlMs: 2000, onAck: (ack) => (deadline = ack.deadline) })
  const error = await slow.then(
    () => assert.fail('the slow command resolved'),
    (e: unknown) => e,
  )
  assert.ok(isWeirError(error, 'WEIR_ERR_DEADLINE_EXCEEDED'), String(error))
  const timeout = (error.details as { result: TimeoutFrame }).result
  assert.equal(timeout.type, 'timeout')
  assert.equal((timeout.payload as { code: string }).code, 'WEIR_ERR_DEADLINE_EXCEEDED')
  assert.equal((timeout.payload as { deadline: number }).deadline, deadline)

  // The handler did run and finish: its result lost to the deadline and went to the late-results topic.
  const [late] = await consume(worker.topics.lateResults, { until: (r) => decodeEnvelope(r.value as Buffer).requestId === 'rw-slow', timeoutMs: 30_000 }).then((all) =>
    all.filter((r) => decodeEnvelope(r.value as Buffer).requestId === 'rw-slow'),
  )
  assert.ok(late !== undefined)
  assert.equal(late.headers.get('weir.late')?.toString(), 'timeout')
  assert.deepEqual(decodeEnvelope(late.value as Buffer).payload, { sleptMs: 2500 })
  assert.ok(worker.slowRuns() > runsBefore)

  // Exactly one outcome on the outcomes topic, the timeout; and the client never got a result for it.
  const outcomes = await outcomesOf('rw-slow')
  assert.deepEqual(
    outcomes.map((o) => o.envelope.status),
    ['timeout'],
  )
  assert.equal(outcomes[0]?.envelope.id, timeout.id)
  await clientDeliveredUpTo(client, await outcomesEnd())
  assert.deepEqual(strays, [])
})

test('after the gateway process is SIGKILLed, the SDK resumes on a new process with its last offsets and gets what it missed exactly once', async (t) => {
  const env = { ...worker.env, WEIR_GATEWAY_DEADLINES: 'deadlines-topic', WEIR_GATEWAY_FETCH_MAX_WAIT_MS: '100' }
  const killed = await spawnGateway(t, undefined, env, { catalogPath: ORDERS_CATALOG_MODULE })
  let port = killed.port
  const strays: Array<ResultFrame | TimeoutFrame> = []
  const client = await connect({
    url: () => `ws://127.0.0.1:${port}/ws`,
    token: () => token({ sub: 'alice' }),
    reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    onResult: (frame) => strays.push(frame),
  })
  t.after(() => client.close())
  const events: EventFrame[] = []
  client.subscribe('orders', (event) => events.push(event))
  const placedOrders = () => events.filter((e) => e.alias === 'order-placed').map((e) => (e.payload as { orderId: string }).orderId)

  await client.send('orders/orders/place', { orderId: 'rw-k1', sku: 'kiwi', qty: 1 }, { requestId: 'rw-k1' })
  await waitFor(() => placedOrders().includes('rw-k1'), { what: 'the first event' })

  // A slow command, and an order on the same partition queued behind it: both complete while no gateway runs.
  const slowId = 'rw-k-slow'
  const slowPartition = partitionFor(slowId, PARTITIONS)
  const behind = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((s) => `rw-k2${s}`).find((id) => partitionFor(id, PARTITIONS) === slowPartition) as string
  let acked = 0
  const slow = client.send('orders/orders/slow', { ms: 1500 }, { requestId: slowId, ttlMs: 20_000, onAck: () => acked++ })
  const queued = client.send('orders/orders/place', { orderId: behind, sku: 'lime', qty: 1 }, { requestId: behind, ttlMs: 20_000, onAck: () => acked++ })
  await waitFor(() => acked === 2, { what: 'both acks' })
  killed.child.kill('SIGKILL')
  assert.equal(await killed.exited, 'SIGKILL')
  await waitFor(() => client.state === 'reconnecting', { what: 'the client to notice' })
  const missedAt = client.offsets()
  await consume(worker.topics.outcomes, { until: (r) => decodeEnvelope(r.value as Buffer).requestId === behind, timeoutMs: 30_000 })
  assert.equal(strays.length, 0)

  const replacement = await spawnGateway(t, undefined, env, { catalogPath: ORDERS_CATALOG_MODULE })
  port = replacement.port
  assert.deepEqual((await slow).payload, { sleptMs: 1500 })
  assert.equal(((await queued).payload as { orderId: string }).orderId, behind)
  // Live again, on the new process.
  await client.send('orders/orders/place', { orderId: 'rw-k3', sku: 'plum', qty: 1 }, { requestId: 'rw-k3' })
  await waitFor(() => placedOrders().includes('rw-k3'), { what: 'the live event' })

  // The resume started from the offsets the client had when the first process died: what it missed came once.
  const missed = (await worker.read(worker.topics.outcomes)).filter((o) => [slowId, behind].includes(o.envelope.requestId))
  assert.equal(missed.length, 2)
  for (const o of missed) {
    const from = missedAt.find((p) => p.topic === o.record.topic && p.partition === o.record.partition)
    assert.ok(from !== undefined && BigInt(from.offset) <= o.record.offset, 'the outcome came after the client\'s last offset')
  }
  await clientDeliveredUpTo(client, await outcomesEnd())
  assert.deepEqual(placedOrders().sort(), ['rw-k1', behind, 'rw-k3'].sort())
  assert.equal(new Set(events.map((e) => `${e.partition}@${e.offset}`)).size, events.length, 'no event twice')
  assert.deepEqual(strays, [], 'no outcome twice')
})

test(
  'two sessions that use the same requestId each get their own outcome',
  async (t) => {
    const alice = await connect({ url, token: await token({ sub: 'alice' }) })
    const bob = await connect({ url, token: await token({ sub: 'bob' }), outcomeGraceMs: 500 })
    t.after(() => {
      alice.close()
      bob.close()
    })
    // Two orders on one partition, so both commands reach the same task (and the same arbiter store).
    const orders = ['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8'].map((s) => `rw-shared-${s}`)
    const [first, second] = orders.filter((id) => partitionFor(id, PARTITIONS) === partitionFor(orders[0] as string, PARTITIONS)) as [string, string]
    assert.equal((await alice.send('orders/orders/place', { orderId: first, sku: 'fig', qty: 1 }, { requestId: 'rw-shared', ttlMs: 2000 })).status, 'ok')
    assert.equal((await bob.send('orders/orders/place', { orderId: second, sku: 'fig', qty: 1 }, { requestId: 'rw-shared', ttlMs: 2000 })).status, 'ok')
  },
)
