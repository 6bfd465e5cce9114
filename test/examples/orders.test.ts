// The example orders service (examples/orders): in-process with the test driver, then on the real broker.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createTestDriver } from '../../testing.ts'
import type { TestDriver } from '../../testing.ts'
import { catalog } from '../../examples/orders/catalog.ts'
import { createOrdersTopics } from '../../examples/orders/create-topics.ts'
import { ordersService } from '../../examples/orders/service.ts'
import type { Order } from '../../examples/orders/service.ts'
import type { CommandService } from '../../processors/command-service.ts'
import { admin, brokers, closeAdmin, consume, produce, uniqueName } from '../helpers/kafka.ts'
import { startTestRuntime } from '../helpers/runtime.ts'

const START = 1_700_000_000_000

interface Harness {
  service: CommandService
  driver: TestDriver
  sleeps: number[]
  /** Sends a command (and its deadline registration, as the gateway does) and returns its outcome. */
  send(alias: string, payload: unknown, ttlMs?: number): Promise<Envelope>
}

async function harness(): Promise<Harness> {
  const sleeps: number[] = []
  // The slow handler's sleep is recorded instead of waited for.
  const service = ordersService({ prefix: 'ex', sleep: async (ms) => void sleeps.push(ms) })
  const driver = await createTestDriver(service.topology, { startTime: START, errorPolicy: 'fail' })
  let n = 0
  return {
    service,
    driver,
    sleeps,
    async send(alias, payload, ttlMs = 5000) {
      const command = createEnvelope({
        kind: 'command',
        topicAlias: 'orders',
        contextPath: 'orders',
        alias,
        payload,
        clientSessionId: 'session-1',
        requestId: `r-${++n}`,
        ttlMs,
        now: driver.now(),
      })
      await driver.pipe('deadlines', { key: command.requestId, value: command })
      await driver.pipe('commands', { key: command.requestId, value: command })
      const outcomes = driver.take(service.topics.outcomes).map((o) => o.value as Envelope)
      assert.equal(outcomes.length, 1, `one outcome for ${alias}`)
      assert.equal(outcomes[0]?.requestId, command.requestId)
      return outcomes[0] as Envelope
    },
  }
}

const events = (h: Harness) => h.driver.take(h.service.topics.events).map((o) => o.value as Envelope)
const code = (e: Envelope) => (e.payload as { code?: string }).code

test('place stores the order, answers with it and emits order-placed', async () => {
  const h = await harness()
  const result = await h.send('place', { orderId: 'o-1', sku: 'apple', qty: 2 })
  assert.equal(result.status, 'ok')
  assert.deepEqual(result.payload, { orderId: 'o-1', sku: 'apple', qty: 2, status: 'placed', placedAt: START })
  assert.equal(result.clientSessionId, 'session-1', 'the result goes back to the session that sent the command')
  const [event, ...more] = events(h)
  assert.equal(more.length, 0)
  assert.equal(event?.kind, 'event')
  assert.equal(event?.alias, 'order-placed')
  assert.deepEqual(event?.payload, { orderId: 'o-1', sku: 'apple', qty: 2 })
  assert.deepEqual(await h.driver.storeEntries<string, Order>('orders'), [{ key: 'o-1', value: result.payload }])
  const again = await h.send('place', { orderId: 'o-1', sku: 'pear', qty: 1 })
  assert.equal(again.status, 'error')
  assert.equal(code(again), 'WEIR_ERR_NON_RETRIABLE')
  assert.match((again.payload as { message: string }).message, /exists already/)
  assert.deepEqual(events(h), [], 'a rejected command emits nothing')
})

test('cancel changes the stored order and emits order-cancelled; get reads it; cancelling twice or an unknown order fails', async () => {
  const h = await harness()
  await h.send('place', { orderId: 'o-2', sku: 'plum', qty: 1 })
  events(h)
  await h.driver.advanceTime(1000)
  const cancelled = await h.send('cancel', { orderId: 'o-2', reason: 'changed my mind' })
  assert.equal(cancelled.status, 'ok')
  assert.deepEqual(cancelled.payload, { orderId: 'o-2', sku: 'plum', qty: 1, status: 'cancelled', placedAt: START, cancelledAt: START + 1000, reason: 'changed my mind' })
  assert.deepEqual(events(h).map((e) => [e.alias, e.payload]), [['order-cancelled', { orderId: 'o-2', reason: 'changed my mind' }]])
  const read = await h.send('get', { orderId: 'o-2' })
  assert.deepEqual(read.payload, cancelled.payload)
  for (const payload of [{ orderId: 'o-2' }, { orderId: 'nope' }]) {
    const failed = await h.send('cancel', payload)
    assert.equal(failed.status, 'error')
    assert.equal(code(failed), 'WEIR_ERR_NON_RETRIABLE')
  }
  assert.equal(code(await h.send('get', { orderId: 'nope' })), 'WEIR_ERR_NON_RETRIABLE')
  assert.deepEqual(events(h), [])
})

test('an unknown command and a schema violation get error results and dead letters; no handler runs', async () => {
  const h = await harness()
  const unknown = await h.send('teleport', { orderId: 'o-3' })
  assert.equal(unknown.status, 'error')
  assert.equal(code(unknown), 'WEIR_ERR_UNKNOWN_COMMAND')
  const invalid = await h.send('place', { orderId: 'bad id!', sku: '', qty: 0, extra: true })
  assert.equal(code(invalid), 'WEIR_ERR_SCHEMA_VIOLATION')
  const violations = (invalid.payload as { violations: string[] }).violations
  for (const field of ['/orderId', '/sku', '/qty']) assert.ok(violations.some((v) => v.startsWith(field)), `${field} in ${violations.join('; ')}`)
  assert.ok(violations.some((v) => /additional/.test(v)), 'the extra property is reported')
  assert.deepEqual(
    h.driver.take('ex.commands.dlq').map((d) => d.headers['weir.error.code']),
    ['WEIR_ERR_UNKNOWN_COMMAND', 'WEIR_ERR_SCHEMA_VIOLATION'],
  )
  assert.deepEqual(await h.driver.storeEntries('orders'), [])
  assert.deepEqual(events(h), [])
})

test('the slow command answers within its TTL, and times out (exactly one outcome) when it is not handled before the deadline', async () => {
  const h = await harness()
  const quick = await h.send('slow', { ms: 200 })
  assert.equal(quick.status, 'ok')
  assert.deepEqual(quick.payload, { sleptMs: 200 })
  assert.deepEqual(h.sleeps, [200])
  // A command whose deadline passes before a result arrives: the arbiter's timer decides "timeout".
  const command = createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias: 'slow', payload: { ms: 3000 }, requestId: 'late-1', ttlMs: 1000, now: h.driver.now() })
  await h.driver.pipe('deadlines', { key: command.requestId, value: command })
  await h.driver.advanceTime(999)
  assert.deepEqual(h.driver.take(h.service.topics.outcomes), [], 'nothing before the deadline')
  await h.driver.advanceTime(2)
  const [timeout, ...others] = h.driver.take(h.service.topics.outcomes).map((o) => o.value as Envelope)
  assert.equal(others.length, 0)
  assert.equal(timeout?.status, 'timeout')
  assert.equal(timeout?.requestId, 'late-1')
  assert.equal(code(timeout as Envelope), 'WEIR_ERR_DEADLINE_EXCEEDED')
  // The command arrives after its deadline: it is not executed.
  await h.driver.pipe('commands', { key: command.requestId, value: command })
  assert.deepEqual(h.sleeps, [200], 'an expired command is not run')
  assert.equal(h.driver.take('ex.commands.dlq')[0]?.headers['weir.error.code'], 'WEIR_ERR_COMMAND_EXPIRED')
})

test('the gateway catalog is the registry the worker routes with', () => {
  assert.deepEqual(catalog.commands.map((c) => `${c.topicAlias}/${c.contextPath}/${c.alias}`), ['orders/orders/place', 'orders/orders/cancel', 'orders/orders/get', 'orders/orders/slow'])
  const place = catalog.find('orders/orders/place')
  assert.ok(place !== undefined)
  assert.equal(place.keyField, 'orderId')
  assert.deepEqual(catalog.check(place, { orderId: 'o', sku: 's', qty: 1 }), { ok: true })
  assert.equal(catalog.check(place, { orderId: 'o', qty: 1 }).ok, false)
  assert.equal(catalog.find('orders/orders/slow')?.defaultTtlMs, 1000)
})

// On the real broker: the same service run by the Kafka runtime, exactly as `weir worker` runs it.
after(closeAdmin)

test('on Kafka: place then cancel produce results on the outcomes topic and events on the events topic', async (t) => {
  const prefix = uniqueName('ex-orders')
  const topicNames = await createOrdersTopics({ brokers: brokers(), prefix, partitions: 2 })
  const service = ordersService({ prefix })
  await startTestRuntime(t, { applicationId: `${prefix}-service`, topology: service.topology, stateDirPrefix: 'weir-orders-' })
  t.after(async () => {
    const adminClient = admin()
    const all = await adminClient.listTopics()
    await adminClient.deleteTopics([...topicNames, ...all.filter((name) => name.startsWith(`${prefix}`) && !topicNames.includes(name))]).catch(() => {})
  })
  const command = (alias: string, payload: unknown, requestId: string) =>
    createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias, payload, requestId, clientSessionId: 's-kafka', ttlMs: 30_000 })
  const place = command('place', { orderId: 'k-1', sku: 'fig', qty: 3 }, 'kr-1')
  const cancel = command('cancel', { orderId: 'k-1' }, 'kr-2')
  const produceCommand = (c: Envelope) =>
    produce([
      { topic: service.topics.deadlines, key: c.requestId, value: encodeEnvelope(c) },
      { topic: service.topics.commands, key: 'k-1', value: encodeEnvelope(c) },
    ])
  await produceCommand(place)
  await produceCommand(cancel)
  const outcomes = (await consume(service.topics.outcomes, { count: 2, timeoutMs: 60_000 })).map((r) => decodeEnvelope(r.value as Buffer))
  const byRequest = new Map(outcomes.map((o) => [o.requestId, o]))
  assert.equal(byRequest.get('kr-1')?.status, 'ok')
  assert.equal((byRequest.get('kr-1')?.payload as Order).status, 'placed')
  assert.equal(byRequest.get('kr-2')?.status, 'ok', 'cancel saw the order placed before it (same key, same partition, in order)')
  assert.equal((byRequest.get('kr-2')?.payload as Order).status, 'cancelled')
  const records = await consume(service.topics.events, { count: 2, timeoutMs: 30_000 })
  const emitted = records.map((r) => decodeEnvelope(r.value as Buffer))
  // Events carry the command's key (the order), so one order's events sit on one partition, in order.
  assert.equal(new Set(records.map((r) => r.partition)).size, 1)
  assert.deepEqual(emitted.map((e) => e.alias), ['order-placed', 'order-cancelled'])
  assert.deepEqual(emitted.map((e) => e.requestId), ['kr-1', 'kr-2'])
})
