// Faults the command router injects, through the test driver (no Kafka): each kind's effect on the command's
// outcome, its dead letter, its `weir.fault` header and the injector's counts. The control topic and the
// worker's metrics are tested against the broker in test/worker/faults.test.ts.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { decodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { createCommandRegistry } from '../../processors/command-router.ts'
import { commandService } from '../../processors/command-service.ts'
import type { CommandService } from '../../processors/command-service.ts'
import { createFaultInjector } from '../../processors/faults/injector.ts'
import type { FaultInjector } from '../../processors/faults/injector.ts'
import { parseFaultRule } from '../../processors/faults/rules.ts'
import { createTestDriver } from '../../topology/test-driver.ts'
import type { DriverOutput, TestDriver } from '../../topology/test-driver.ts'

const topics = { commands: 'shop.commands', results: 'shop.results', events: 'shop.events' }

function setup(onSleep?: (ms: number) => void): { service: CommandService; faults: FaultInjector; calls: () => number; sleeps: number[] } {
  let calls = 0
  const sleeps: number[] = []
  const faults = createFaultInjector()
  const registry = createCommandRegistry({
    topicAlias: 'shop',
    topics,
    handlers: [
      {
        contextPath: 'orders',
        alias: 'place',
        payloadSchema: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' } } },
        stores: ['orders'],
        async handle(ctx: { payload: { sku: string }; store: (n: string) => { put(k: string, v: unknown): Promise<void> }; emit(a: string, p: unknown): void }) {
          calls++
          await ctx.store('orders').put(ctx.payload.sku, 'placed')
          ctx.emit('placed', { sku: ctx.payload.sku })
          return { sku: ctx.payload.sku }
        },
      },
      { contextPath: 'orders', alias: 'get', payloadSchema: { type: 'object' }, handle: () => ({ found: false }) },
    ],
  })
  const service = commandService({
    registry,
    faults,
    sleep: async (ms) => {
      sleeps.push(ms)
      onSleep?.(ms)
    },
    retry: { attempts: 3, baseDelayMs: 10, jitter: 'none' },
    outOfOrder: { attempts: 2, baseDelayMs: 1000 },
  })
  return { service, faults, calls: () => calls, sleeps }
}

const command = (sku: string, alias = 'place', ttlMs?: number, now?: number) =>
  createEnvelope({ kind: 'command', topicAlias: 'shop', contextPath: 'orders', alias, payload: { sku }, clientSessionId: 's1', ...(ttlMs === undefined ? {} : { ttlMs, now }) })
const values = (outputs: DriverOutput[]) => outputs.map((o) => o.value as Envelope)
const codeOf = (envelope: Envelope | undefined) => (envelope?.payload as { code?: string } | undefined)?.code
const driverFor = (s: CommandService): Promise<TestDriver> => createTestDriver(s.topology, { startTime: 1_000_000, errorPolicy: 'fail' })
const rule = (input: object) => parseFaultRule(input)

test('an armed injector without a matching rule changes nothing; an unarmed one with rules neither', async () => {
  const { service, faults, calls } = setup()
  faults.set(rule({ id: 'off', kind: 'drop' }))
  const driver = await driverFor(service)
  await driver.pipe('commands', { key: 'a', value: command('a') })
  faults.arm()
  faults.clear()
  faults.set(rule({ id: 'other', kind: 'drop', match: { path: 'shop/orders/get' } }))
  await driver.pipe('commands', { key: 'b', value: command('b') })
  const outcomes = driver.take(topics.results)
  assert.deepEqual(values(outcomes).map((o) => o.status), ['ok', 'ok'])
  assert.deepEqual(outcomes.map((o) => o.headers['weir.fault']), [undefined, undefined])
  assert.equal(calls(), 2)
  assert.deepEqual(faults.injections(), [])
})

test('error (non-retriable): an error result and a dead letter at once, both marked; the handler never runs', async () => {
  const { service, faults, calls } = setup()
  faults.arm()
  faults.set(rule({ id: 'boom', kind: 'error', match: { path: 'shop/orders/place', processor: 'router', topic: topics.commands } }))
  const driver = await driverFor(service)
  await driver.pipe('commands', { key: 'a', value: command('a') })
  const [outcome] = driver.take(topics.results)
  assert.equal((outcome?.value as Envelope).status, 'error')
  assert.equal(codeOf(outcome?.value as Envelope), 'WEIR_ERR_NON_RETRIABLE')
  assert.equal((outcome?.value as Envelope<{ fault: string }>).payload.fault, 'error:boom')
  assert.equal(outcome?.headers['weir.fault'], 'error:boom')
  const [dead] = driver.take(`${topics.commands}.dlq`)
  assert.equal(dead?.headers['weir.error.code'], 'WEIR_ERR_NON_RETRIABLE')
  assert.equal(dead?.headers['weir.fault'], 'error:boom')
  assert.equal(calls(), 0)
  assert.deepEqual(driver.take(topics.events), [])
  assert.deepEqual(faults.injections(), [{ kind: 'error', rule: 'boom', count: 1 }])
  assert.equal(service.metrics.router.failed, 1)
})

test('error (retriable): retried in order like a handler error; a seeded rule that hits the first attempt only lets the second succeed', async () => {
  const { service, faults, calls, sleeps } = setup()
  faults.arm()
  // Find a command whose seeded rolls hit attempt 1 and miss attempt 2 (rolls are a function of id and attempt).
  const seeded = rule({ id: 'flaky', kind: 'error', retriable: true, probability: 0.5, seed: 'unit' })
  const { rollFault } = await import('../../processors/faults/rules.ts')
  let cmd = command('a')
  while (!(rollFault(seeded, `${cmd.id}#0:1`) && !rollFault(seeded, `${cmd.id}#0:2`))) cmd = command('a')
  faults.set(seeded)
  const driver = await driverFor(service)
  await driver.pipe('commands', { key: 'a', value: cmd })
  const [outcome] = driver.take(topics.results)
  assert.equal((outcome?.value as Envelope).status, 'ok')
  assert.equal(outcome?.headers['weir.fault'], 'error:flaky', 'the result says a fault was injected on its way')
  assert.equal(calls(), 1)
  assert.deepEqual(sleeps, [10], 'one in-order backoff')
  assert.equal(service.metrics.router.retries, 1)
})

test('error (retriable) every time: the in-order budget, then out of order, then retries exhausted', async () => {
  const { service, faults, calls } = setup()
  faults.arm()
  faults.set(rule({ id: 'down', kind: 'error', retriable: true }))
  const driver = await driverFor(service)
  const cmd = createEnvelope({ kind: 'command', topicAlias: 'shop', contextPath: 'orders', alias: 'place', payload: { sku: 'a' }, retry: { outOfOrder: true, count: 0 } })
  await driver.pipe('commands', { key: 'a', value: cmd })
  const [schedule] = driver.take(service.topics.scheduler)
  assert.equal((schedule?.value as { id: string }).id, `retry:${cmd.id}:1`)
  await driver.pipe('schedule', { key: 'x', value: schedule?.value })
  await driver.advanceTime(5_000)
  const [redelivered] = driver.take(topics.commands)
  await driver.pipe('commands', { key: 'a', value: decodeEnvelope(redelivered?.value as Buffer) })
  const [outcome] = driver.take(topics.results)
  assert.equal(codeOf(outcome?.value as Envelope), 'WEIR_ERR_RETRIES_EXHAUSTED')
  assert.equal(outcome?.headers['weir.fault'], 'error:down')
  assert.equal(calls(), 0)
  assert.deepEqual(faults.injections(), [{ kind: 'error', rule: 'down', count: 6 }], '3 in-order attempts on each of 2 deliveries')
})

test('delay: each attempt waits before the handler; past the deadline the timeout is the outcome and the marked result is late', async () => {
  const { service, faults, sleeps } = setup((ms) => driver.elapse(ms))
  faults.arm()
  faults.set(rule({ id: 'slow', kind: 'delay', delayMs: 2000, match: { path: 'shop/orders/place' } }))
  const driver = await driverFor(service)
  const cmd = command('a', 'place', 1000, driver.now())
  await driver.pipe('deadlines', { key: 'a', value: cmd })
  await driver.pipe('commands', { key: 'a', value: cmd })
  assert.deepEqual(sleeps, [2000])
  const [outcome] = values(driver.take(topics.results))
  assert.equal(outcome?.status, 'timeout', 'the injected wait outlived the TTL')
  const [late] = driver.take(service.topics.lateResults)
  assert.equal((late?.value as Envelope).status, 'ok')
  assert.equal(late?.headers['weir.fault'], 'delay:slow')
  assert.equal(late?.headers['weir.late'], 'timeout')
  // Another path is not delayed.
  await driver.pipe('commands', { key: 'b', value: command('b', 'get') })
  assert.deepEqual(sleeps, [2000])
  assert.deepEqual(faults.injections(), [{ kind: 'delay', rule: 'slow', count: 1 }])
})

test('drop: the command is consumed, the handler ran, and nothing it made survives; the deadline then times it out', async () => {
  const { service, faults, calls } = setup()
  faults.arm()
  faults.set(rule({ id: 'lost', kind: 'drop', match: { path: 'shop/orders/place' } }))
  const driver = await driverFor(service)
  const cmd = command('a', 'place', 1000, driver.now())
  await driver.pipe('deadlines', { key: 'a', value: cmd })
  await driver.pipe('commands', { key: 'a', value: cmd })
  assert.equal(calls(), 1)
  assert.deepEqual(driver.take(topics.results), [])
  assert.deepEqual(driver.take(topics.events), [])
  assert.deepEqual(await driver.storeEntries('orders'), [], 'the handler\'s writes are lost with its output')
  // A replay of the same command is a duplicate: the drop was committed as the command's handling.
  await driver.pipe('commands', { key: 'a', value: cmd })
  assert.equal(calls(), 1)
  await driver.advanceTime(1000)
  const [timeout] = values(driver.take(topics.results))
  assert.equal(timeout?.status, 'timeout')
  assert.deepEqual(faults.injections(), [{ kind: 'drop', rule: 'lost', count: 1 }])
})

test('duplicate: the command is delivered once more, marked, and the dedupe store drops it', async () => {
  const { service, faults, calls } = setup()
  faults.arm()
  faults.set(rule({ id: 'twice', kind: 'duplicate' }))
  const driver = await driverFor(service)
  const cmd = command('a')
  await driver.pipe('commands', { key: 'a', value: cmd })
  assert.equal(values(driver.take(topics.results)).length, 1)
  const [schedule] = driver.take(service.topics.scheduler)
  assert.equal((schedule?.value as { id: string }).id, `fault-duplicate:${cmd.id}:0`)
  await driver.pipe('schedule', { key: 'x', value: schedule?.value })
  await driver.advanceTime(1)
  const [copy] = driver.take(topics.commands)
  assert.equal(copy?.headers['weir.fault'], 'duplicate:twice')
  assert.equal(copy?.key?.toString(), 'a', 'same key: same partition, same dedupe store')
  const again = decodeEnvelope(copy?.value as Buffer)
  assert.equal(again.id, cmd.id)
  faults.clear()
  await driver.pipe('commands', { key: 'a', value: again })
  assert.equal(calls(), 1)
  assert.equal(service.metrics.dedupe.duplicates, 1)
  assert.deepEqual(driver.take(topics.results), [])
})

test('corrupt: the payload becomes garbage bytes before the schema check: an error result and a dead letter with the corrupt command', async () => {
  const { service, faults, calls } = setup()
  faults.arm()
  faults.set(rule({ id: 'garble', kind: 'corrupt' }))
  const driver = await driverFor(service)
  await driver.pipe('commands', { key: 'a', value: command('a') })
  const [outcome] = driver.take(topics.results)
  assert.equal(codeOf(outcome?.value as Envelope), 'WEIR_ERR_SCHEMA_VIOLATION')
  assert.equal(outcome?.headers['weir.fault'], 'corrupt:garble')
  const [dead] = driver.take(`${topics.commands}.dlq`)
  assert.equal(dead?.headers['weir.fault'], 'corrupt:garble')
  assert.ok(decodeEnvelope(dead?.value as Buffer).payload instanceof Uint8Array, 'the dead letter holds the corrupted command')
  assert.equal(calls(), 0)
})
