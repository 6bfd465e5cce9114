// The seed platform's guarantees as processors, through the test driver (no Kafka): routing, validation,
// dedupe, retries, TTL arbitration, scheduling. Real-broker tests are in command-service.kafka.test.ts.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { decodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { NonRetriableError, createCommandRegistry } from '../../processors/command-router.ts'
import { commandService } from '../../processors/command-service.ts'
import type { CommandService } from '../../processors/command-service.ts'
import { createTestDriver } from '../../topology/test-driver.ts'
import type { DriverOutput, TestDriver } from '../../topology/test-driver.ts'

const topics = { commands: 'orders.commands', results: 'orders.results', events: 'orders.events' }

/** Runs inside the handler (a test makes it slow with driver.elapse). */
let duringHandle: (() => void) | undefined

function service(failuresBeforeSuccess = 0): { service: CommandService; calls: () => number } {
  let calls = 0
  const registry = createCommandRegistry({
    topicAlias: 'orders',
    topics,
    handlers: [
      {
        contextPath: 'shop',
        alias: 'place',
        payloadSchema: { type: 'object', required: ['sku', 'qty'], properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 } } },
        stores: ['orders'],
        async handle(ctx: { payload: { sku: string; qty: number }; store: (n: string) => { get(k: string): Promise<unknown>; put(k: string, v: unknown): Promise<void> }; emit(a: string, p: unknown): void; attempt: number }) {
          calls++
          duringHandle?.()
          await ctx.store('orders').put(ctx.payload.sku, ctx.attempt)
          if (calls <= failuresBeforeSuccess) throw new Error(`transient ${calls}`)
          if (ctx.payload.sku === 'forbidden') throw new NonRetriableError('sku is forbidden')
          ctx.emit('placed', { sku: ctx.payload.sku })
          return { accepted: ctx.payload.qty }
        },
      },
    ],
  })
  return {
    service: commandService({ registry, sleep: async () => {}, retry: { attempts: 3, baseDelayMs: 10 }, outOfOrder: { attempts: 3, baseDelayMs: 1000 } }),
    calls: () => calls,
  }
}

async function driverFor(s: CommandService, startTime = 1_000_000): Promise<TestDriver> {
  return createTestDriver(s.topology, { startTime, errorPolicy: 'fail' })
}

/** Feeds outputs that are inputs of the same service (schedule requests) back in. */
async function pump(driver: TestDriver, s: CommandService): Promise<void> {
  const loop: Array<[string, string]> = [[s.topics.scheduler, 'schedule']]
  for (let moved = true; moved; ) {
    moved = false
    for (const [topic, source] of loop) {
      for (const output of driver.take(topic)) {
        moved = true
        await driver.pipe(source, { key: output.key, value: output.value })
      }
    }
  }
}

function command(payload: unknown, extra: Partial<Parameters<typeof createEnvelope>[0]> = {}): Envelope {
  return createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'shop', alias: 'place', payload, clientSessionId: 's1', ...extra })
}

const values = (outputs: DriverOutput[]) => outputs.map((o) => o.value as Envelope)

test('a command becomes one ok result on the outcomes topic, with its events, and state', async () => {
  const { service: s } = service()
  const driver = await driverFor(s)
  const cmd = command({ sku: 'a', qty: 2 }, { now: driver.now(), ttlMs: 5000 })
  await driver.pipe('deadlines', { key: 'a', value: cmd })
  await driver.pipe('commands', { key: 'a', value: cmd })
  await pump(driver, s)
  const [outcome, ...more] = values(driver.take(topics.results))
  assert.equal(more.length, 0)
  assert.equal(outcome?.status, 'ok')
  assert.deepEqual(outcome?.payload, { accepted: 2 })
  assert.equal(outcome?.requestId, cmd.requestId)
  assert.equal(outcome?.clientSessionId, 's1')
  assert.deepEqual(outcome?.breadcrumbs.map((b) => b.id), [cmd.id])
  const [event] = values(driver.take(topics.events))
  assert.equal(event?.alias, 'placed')
  assert.equal(event?.kind, 'event')
  assert.deepEqual(await driver.storeEntries('orders'), [{ key: 'a', value: 1 }])
  // The deadline passes later: nothing more, the outcome was decided.
  await driver.advanceTime(10_000)
  await pump(driver, s)
  assert.deepEqual(driver.take(topics.results), [])
})

test('a duplicate command id is dropped', async () => {
  const { service: s, calls } = service()
  const driver = await driverFor(s)
  const cmd = command({ sku: 'a', qty: 1 })
  await driver.pipe('commands', { key: 'a', value: cmd })
  await driver.pipe('commands', { key: 'a', value: cmd })
  await pump(driver, s)
  assert.equal(calls(), 1)
  assert.equal(driver.take(topics.results).length, 1)
  assert.equal(s.metrics.dedupe.duplicates, 1)
})

test('unknown commands and schema violations get an error result and a dead letter, never a retry', async () => {
  const { service: s, calls } = service()
  const driver = await driverFor(s)
  await driver.pipe('commands', { key: 'x', value: command({ sku: 'a', qty: 1 }, { alias: 'teleport' }) })
  await driver.pipe('commands', { key: 'x', value: command({ sku: 7, qty: 0 }) })
  await pump(driver, s)
  const outcomes = values(driver.take(topics.results))
  assert.deepEqual(outcomes.map((o) => [o.status, (o.payload as { code: string }).code]), [
    ['error', 'WEIR_ERR_UNKNOWN_COMMAND'],
    ['error', 'WEIR_ERR_SCHEMA_VIOLATION'],
  ])
  assert.ok(((outcomes[1]?.payload as { violations: string[] }).violations ?? []).length >= 2)
  const dead = driver.take(`${topics.commands}.dlq`)
  assert.deepEqual(dead.map((d) => d.headers['weir.error.code']), ['WEIR_ERR_UNKNOWN_COMMAND', 'WEIR_ERR_SCHEMA_VIOLATION'])
  assert.equal(dead[0]?.headers['weir.origin.topic'], topics.commands)
  assert.equal(calls(), 0)
})

test('a command past its deadline is not executed: it is dead-lettered as expired', async () => {
  const { service: s, calls } = service()
  const driver = await driverFor(s)
  const cmd = command({ sku: 'a', qty: 1 }, { now: driver.now() - 10_000, ttlMs: 1000 })
  await driver.pipe('commands', { key: 'a', value: cmd })
  assert.equal(calls(), 0)
  const [dead] = driver.take(`${topics.commands}.dlq`)
  assert.equal(dead?.headers['weir.error.code'], 'WEIR_ERR_COMMAND_EXPIRED')
})

test('the timeout is the outcome when no result came by the deadline; a late result is kept apart', async () => {
  const { service: s } = service()
  const driver = await driverFor(s)
  const cmd = command({ sku: 'slow', qty: 1 }, { now: driver.now(), ttlMs: 2000 })
  await driver.pipe('deadlines', { key: 'slow', value: cmd })
  await driver.advanceTime(1999)
  assert.deepEqual(driver.take(topics.results), [])
  await driver.advanceTime(1)
  const [timeout] = values(driver.take(topics.results))
  assert.equal(timeout?.status, 'timeout')
  assert.equal((timeout?.payload as { code: string }).code, 'WEIR_ERR_DEADLINE_EXCEEDED')
  assert.equal(timeout?.requestId, cmd.requestId)
  // The command was lagging; it is handled now (its own deadline check uses the command's deadline).
  const late = command({ sku: 'slow', qty: 1 }, { requestId: cmd.requestId, now: driver.now() })
  await driver.pipe('commands', { key: 'slow', value: late })
  await pump(driver, s)
  assert.deepEqual(driver.take(topics.results), [], 'no second outcome')
  const [kept] = values(driver.take(`${topics.results}.late`))
  assert.equal(kept?.status, 'ok')
  assert.equal(s.metrics.arbiter.lateResults, 1)
})

test('a handler that runs past the deadline loses to it: the timeout is the outcome though its timer had not fired', async (t) => {
  const { service: s } = service()
  const driver = await driverFor(s)
  const cmd = command({ sku: 'slow', qty: 1 }, { now: driver.now(), ttlMs: 1000 })
  await driver.pipe('deadlines', { key: 'slow', value: cmd })
  duringHandle = () => driver.elapse(1500)
  t.after(() => (duringHandle = undefined))
  await driver.pipe('commands', { key: 'slow', value: cmd })
  const [timeout, ...others] = values(driver.take(topics.results))
  assert.equal(others.length, 0)
  assert.equal(timeout?.status, 'timeout')
  assert.equal((timeout?.payload as { deadline: number }).deadline, cmd.deadline)
  const [late] = driver.take(`${topics.results}.late`)
  assert.equal((late?.value as Envelope).status, 'ok')
  assert.equal(late?.headers['weir.late'], 'timeout')
  await driver.advanceTime(10_000)
  assert.deepEqual(driver.take(topics.results), [], 'the timer does not fire a second outcome')
})

test('the deadline holds when the gateway\'s registration is still queued behind a slow command', async (t) => {
  const { service: s } = service()
  const driver = await driverFor(s)
  const cmd = command({ sku: 'slow', qty: 1 }, { now: driver.now(), ttlMs: 1000 })
  duringHandle = () => driver.elapse(1500)
  t.after(() => (duringHandle = undefined))
  await driver.pipe('commands', { key: 'slow', value: cmd })
  const [timeout, ...others] = values(driver.take(topics.results))
  assert.equal(others.length, 0)
  assert.equal(timeout?.status, 'timeout', 'the router registered the deadline before running the handler')
  assert.equal((driver.take(`${topics.results}.late`)[0]?.value as Envelope | undefined)?.status, 'ok')
  // The gateway's registration arrives now: ignored.
  await driver.pipe('deadlines', { key: 'slow', value: cmd })
  await driver.advanceTime(10_000)
  assert.deepEqual(driver.take(topics.results), [], 'one outcome')
  assert.equal(s.metrics.arbiter.registered, 1)
})

test('transient failures are retried in order; the outcome and state come from the attempt that succeeded', async () => {
  const { service: s, calls } = service(2)
  const driver = await driverFor(s)
  await driver.pipe('commands', { key: 'a', value: command({ sku: 'a', qty: 1 }) })
  await pump(driver, s)
  assert.equal(calls(), 3)
  const [outcome] = values(driver.take(topics.results))
  assert.equal(outcome?.status, 'ok')
  assert.deepEqual(await driver.storeEntries('orders'), [{ key: 'a', value: 3 }], 'writes of failed attempts are gone')
  assert.equal(driver.take(topics.events).length, 1, 'events of failed attempts are gone')
})

test('a non-retriable error goes straight to the dead letters with an error result', async () => {
  const { service: s, calls } = service()
  const driver = await driverFor(s)
  await driver.pipe('commands', { key: 'f', value: command({ sku: 'forbidden', qty: 1 }) })
  await pump(driver, s)
  assert.equal(calls(), 1)
  const [outcome] = values(driver.take(topics.results))
  assert.equal((outcome?.payload as { code: string }).code, 'WEIR_ERR_NON_RETRIABLE')
  assert.equal(driver.take(`${topics.commands}.dlq`)[0]?.headers['weir.attempts'], '1')
})

test('flagged commands are retried out of order through the scheduler with growing delays', async () => {
  const { service: s, calls } = service(100)
  const driver = await driverFor(s, 0)
  const cmd = command({ sku: 'b', qty: 1 }, { retry: { outOfOrder: true, count: 0 } })
  await driver.pipe('commands', { key: 'b', value: cmd })
  const scheduled: number[] = []
  for (let round = 0; round < 5; round++) {
    for (const request of driver.take(s.topics.scheduler)) {
      const r = request.value as { deliverAt: number }
      scheduled.push(r.deliverAt - driver.now())
      await driver.pipe('schedule', { key: request.key, value: request.value })
    }
    await driver.advanceTime(10_000)
    for (const delivery of driver.take(topics.commands)) await driver.pipe('commands', { key: 'b', value: decodeEnvelope(delivery.value as Buffer) })
  }
  assert.deepEqual(scheduled, [1000, 2000], 'delays grow exponentially (base 1000, doubling)')
  assert.equal(calls(), 9, '3 in-order attempts for each of the 3 deliveries')
  const [outcome, ...others] = values(driver.take(topics.results))
  assert.equal(others.length, 0, 'one outcome, after the last retry')
  assert.equal((outcome?.payload as { code: string }).code, 'WEIR_ERR_RETRIES_EXHAUSTED')
  assert.equal((outcome?.payload as { attempts: number }).attempts ?? (outcome?.payload as { details?: { attempts: number } }).details?.attempts, 9, 'every attempt counted')
  const [dead] = driver.take(`${topics.commands}.dlq`)
  assert.equal(dead?.headers['weir.attempts'], '9')
})

test('the scheduler delivers at the due time once, and cancel removes an envelope', async () => {
  const { service: s } = service()
  const driver = await driverFor(s, 0)
  const schedule = (id: string, deliverAt: number) =>
    driver.pipe('schedule', { key: id, value: { op: 'schedule', id, deliverAt, topic: 'somewhere', key: Buffer.from(id), value: Buffer.from(`payload-${id}`) } })
  await schedule('one', 500)
  await schedule('two', 800)
  await driver.pipe('schedule', { key: 'two', value: { op: 'cancel', id: 'two' } })
  await driver.advanceTime(499)
  assert.deepEqual(driver.take('somewhere'), [])
  await driver.advanceTime(1000)
  const delivered = driver.take('somewhere')
  assert.deepEqual(delivered.map((d) => Buffer.from(d.value as Buffer).toString()), ['payload-one'])
  assert.equal(delivered[0]?.headers['weir.scheduled.id'], 'one')
  await driver.advanceTime(10_000)
  assert.deepEqual(driver.take('somewhere'), [])
})
