// The order saga example (examples/saga) on the real broker: the orders service and the three participants
// in-process, the saga in a worker process that is SIGKILLed while sagas are in flight and restarted. Every saga
// ends exactly once, as completed or compensated as its order demands, compensations newest first, each
// participant's effect once; a reply for an unknown saga is dead-lettered; `weir saga list|inspect` show it.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, test } from 'node:test'

import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope, traceId } from '../../envelope/envelope.ts'
import type { Envelope, TraceContext } from '../../envelope/envelope.ts'
import { openStore } from '../../state/open-store.ts'
import { createStreamRuntime } from '../../topology/runtime/stream-runtime.ts'
import type { StreamRuntime } from '../../topology/runtime/runtime-options.ts'
import { ordersService } from '../../examples/orders/service.ts'
import { createSagaExampleTopics } from '../../examples/saga/create-topics.ts'
import { PARTICIPANTS, orderSaga, participantService, participantTopics, sagaApplicationId } from '../../examples/saga/services.ts'
import { stepRequestId } from '../../processors/saga-definition.ts'
import type { SagaState } from '../../processors/saga-state.ts'
import { sagaMain } from '../../worker/sagas.ts'
import { admin, brokers, clientOptions, closeAdmin, produce, readAll, uniqueName } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { spawnWorker, waitForAssignment } from '../helpers/workers.ts'
import type { WorkerProcess } from '../helpers/workers.ts'

after(closeAdmin)

const ORDERS: Array<{ orderId: string; sku: string; qty: number; ends: 'completed' | 'compensated'; undone: string[] }> = [
  { orderId: 'ok-1', sku: 'apple', qty: 2, ends: 'completed', undone: [] },
  { orderId: 'ok-2', sku: 'pear', qty: 10, ends: 'completed', undone: [] },
  { orderId: 'stock-1', sku: 'apple', qty: 20, ends: 'compensated', undone: ['payment'] },
  { orderId: 'piano-1', sku: 'piano', qty: 1, ends: 'compensated', undone: ['inventory', 'payment'] },
  { orderId: 'declined-1', sku: 'fig', qty: 60, ends: 'compensated', undone: [] },
  { orderId: 'ok-3', sku: 'fig', qty: 1, ends: 'completed', undone: [] },
  { orderId: 'stock-2', sku: 'pear', qty: 11, ends: 'compensated', undone: ['payment'] },
  { orderId: 'piano-2', sku: 'piano', qty: 3, ends: 'compensated', undone: ['inventory', 'payment'] },
  { orderId: 'ok-4', sku: 'kiwi', qty: 5, ends: 'completed', undone: [] },
]

test('the order saga: each saga ends once, completed or compensated in reverse order, across a SIGKILL of the saga worker', { timeout: 240_000 }, async (t) => {
  const prefix = uniqueName('saga-ex')
  const names = await createSagaExampleTopics({ ...clientOptions(), prefix, partitions: 3 })
  const stateRoot = await mkdtemp(join(tmpdir(), 'weir-saga-'))
  const runtimes: StreamRuntime[] = []
  let worker: WorkerProcess | undefined
  t.after(async () => {
    await worker?.kill('SIGKILL')
    await Promise.all(runtimes.map((r) => r.stop().catch(() => {})))
    await rm(stateRoot, { recursive: true, force: true })
    const all = await admin().listTopics()
    await admin()
      .deleteTopics([...new Set([...names, ...all.filter((n) => n.startsWith(prefix))])])
      .catch(() => {})
  })
  const services = [{ id: `${prefix}-service`, topology: ordersService({ prefix }).topology }, ...PARTICIPANTS.map((p) => ({ id: `${prefix}-${p}`, topology: participantService(prefix, p).topology }))]
  for (const [i, s] of services.entries()) {
    const runtime = createStreamRuntime({ applicationId: s.id, topology: s.topology, brokers: brokers(), stateDir: join(stateRoot, `svc-${i}`), openStore, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500 })
    runtimes.push(runtime)
    await runtime.start()
  }
  const saga = orderSaga(prefix)
  const applicationId = sagaApplicationId(prefix)
  const spawnSaga = () =>
    spawnWorker({
      name: 'saga',
      module: resolve(import.meta.dirname, '../../examples/saga/topology.ts'),
      brokers: brokers(),
      stateDir: join(stateRoot, 'saga'),
      applicationId,
      env: { WEIR_ORDERS_PREFIX: prefix, WEIR_SAGA_SERVICE: 'saga' },
      extraArgs: ['--commit-interval-ms', '50'],
    })
  worker = spawnSaga()
  await waitForAssignment([worker], 3, 120_000)

  const ordersCommands = `${prefix}.commands`
  const place = (o: (typeof ORDERS)[number]) => {
    const command = createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias: 'place', payload: { orderId: o.orderId, sku: o.sku, qty: o.qty }, requestId: `r-${o.orderId}`, clientSessionId: 's-1', ttlMs: 60_000 })
    return [
      { topic: `${ordersCommands}.deadlines`, key: command.requestId, value: encodeEnvelope(command) },
      { topic: ordersCommands, key: o.orderId, value: encodeEnvelope(command) },
    ]
  }
  const eventsOf = async () => (await readAll(saga.topics.events)).map((r) => decodeEnvelope(r.value as Buffer))
  const sagaEvents = (events: Envelope[], alias: string) => events.filter((e) => e.alias === alias)

  await produce(ORDERS.slice(0, 5).flatMap(place))
  await waitFor(async () => sagaEvents(await eventsOf(), 'saga-started').length > 0, { timeoutMs: 60_000, what: 'a saga to start' })
  // Killed with sagas in flight: whatever it had not committed is redone by the next owner from the changelog.
  await worker.kill('SIGKILL')
  await produce(ORDERS.slice(5).flatMap(place))
  // A reply naming a saga that never was: dead-lettered, nothing else changes.
  const ghostId = stepRequestId('order', { sagaId: 'ghost', step: 0, phase: 'do', attempt: 1 })
  const ghost = createEnvelope({ kind: 'result', contextPath: 'payment', alias: 'charge', status: 'ok', payload: {}, requestId: ghostId })
  await produce([{ topic: participantTopics(prefix, 'payment').results, key: ghostId, value: encodeEnvelope(ghost) }])
  worker = spawnSaga()

  const ended = await waitFor(
    async () => {
      const events = await eventsOf()
      const ends = events.filter((e) => e.alias === 'saga-completed' || e.alias === 'saga-compensated')
      return new Set(ends.map((e) => (e.payload as { sagaId: string }).sagaId)).size >= ORDERS.length ? events : undefined
    },
    { timeoutMs: 150_000, intervalMs: 1000, what: 'every saga to end' },
  )
  const byOrder = (events: Envelope[], id: string) => events.filter((e) => e.contextPath === 'sagas' && (e.payload as { sagaId?: string }).sagaId === id)
  for (const order of ORDERS) {
    const mine = byOrder(ended, order.orderId)
    const ends = mine.filter((e) => e.alias === 'saga-completed' || e.alias === 'saga-compensated')
    assert.deepEqual(ends.map((e) => e.alias), [`saga-${order.ends}`], `${order.orderId} ends once, ${order.ends}`)
    assert.equal(sagaEvents(mine, 'saga-started').length, 1, `${order.orderId} starts once`)
    const undone = mine.filter((e) => e.alias === 'saga-step-compensated').map((e) => (e.payload as { step: string }).step)
    assert.deepEqual(undone, order.undone, `${order.orderId}: compensations newest first`)
    const placed = ended.find((e) => e.alias === 'order-placed' && (e.payload as { orderId: string }).orderId === order.orderId) as Envelope
    for (const e of mine) assert.equal(traceId(e.trace as TraceContext), traceId(placed.trace as TraceContext), `${order.orderId}: one trace`)
    assert.equal(ends[0]?.requestId, `r-${order.orderId}`, 'the saga events carry the request id of the order')
  }
  // Each participant's effect happened once however often its command was sent (handlers are idempotent).
  const paymentEvents = (await readAll(participantTopics(prefix, 'payment').events)).map((r) => decodeEnvelope(r.value as Buffer))
  const refunded = paymentEvents.filter((e) => e.alias === 'payment-refunded').map((e) => (e.payload as { orderId: string }).orderId).sort()
  assert.deepEqual(refunded, ORDERS.filter((o) => o.undone.includes('payment')).map((o) => o.orderId).sort())
  const charged = paymentEvents.filter((e) => e.alias === 'payment-charged').map((e) => (e.payload as { orderId: string }).orderId).sort()
  assert.deepEqual(charged, ORDERS.filter((o) => o.orderId !== 'declined-1').map((o) => o.orderId).sort())

  const letters = await waitFor(async () => {
    const all = await readAll(`${saga.topics.inbox}.dlq`).catch(() => [])
    return all.length > 0 ? all : undefined
  }, { timeoutMs: 30_000, what: 'the unknown reply dead-lettered' })
  assert.equal(letters.length, 1)
  assert.equal(letters[0]?.headers.get('weir.error.code')?.toString(), 'WEIR_ERR_SAGA_UNKNOWN')

  // The CLI reads the saga store's changelog.
  const run = async (...args: string[]) => {
    let out = ''
    const code = await sagaMain(args, { KAFKA_BOOTSTRAP_SERVERS: brokers().join(',') }, (text) => (out += text))
    return { code, out }
  }
  const listed = await run('list', '--application', applicationId, '--state', 'compensated', '--json')
  assert.equal(listed.code, 0)
  const compensated = listed.out.trim().split('\n').map((line) => JSON.parse(line) as SagaState)
  assert.deepEqual(compensated.map((s) => s.sagaId).sort(), ORDERS.filter((o) => o.ends === 'compensated').map((o) => o.orderId).sort())
  const text = await run('list', '--application', applicationId)
  assert.match(text.out, /9 saga\(s\); in all 0 running, 0 compensating, 4 completed, 5 compensated/)
  const inspected = await run('inspect', 'piano-1', '--application', applicationId)
  assert.equal(inspected.code, 0)
  assert.match(inspected.out, /saga order piano-1: compensated/)
  assert.match(inspected.out, /failure: shipping: WEIR_ERR_NON_RETRIABLE: cannot ship a piano/)
  assert.ok(inspected.out.indexOf('compensation-completed inventory') < inspected.out.indexOf('compensation-completed payment'), inspected.out)
  assert.equal((await run('inspect', 'nobody', '--application', applicationId)).code, 1)
  assert.equal((await run('list', '--application', applicationId, '--state', 'lost')).code, 2)
})
