// The saga helper with the test driver: the router and the coordinator of one topology, the inbox looped back
// by hand, the participants played by the test (each reply a follow-up of the message the saga sent).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createEnvelope, followUp, traceId } from '../../envelope/envelope.ts'
import type { Envelope, ResultStatus, TraceContext } from '../../envelope/envelope.ts'
import { isWeirError } from '../../core/errors.ts'
import { defineSaga } from '../../processors/saga.ts'
import type { Saga } from '../../processors/saga.ts'
import { parseStepRequestId, stepRequestId } from '../../processors/saga-definition.ts'
import type { SagaDefinition } from '../../processors/saga-definition.ts'
import type { SagaState } from '../../processors/saga-state.ts'
import { createTestDriver } from '../../testing.ts'
import type { TestDriver } from '../../testing.ts'
import type { DriverOutput } from '../../topology/test-driver.ts'

const START = 1_700_000_000_000

function definition(overrides: Partial<SagaDefinition<{ orderId: string; amount: number }>> = {}): SagaDefinition<{ orderId: string; amount: number }> {
  const command = (service: string, alias: string) => ({ topic: `${service}.commands`, topicAlias: service, contextPath: service, alias })
  return {
    name: 'order',
    start: { topic: 'orders.events', alias: 'order-placed', sagaId: (e) => (e.payload as { orderId?: string }).orderId },
    replyTopics: ['payment.results', 'inventory.results', 'shipping.results', 'shipping.events'],
    steps: [
      {
        name: 'payment',
        ...command('payment', 'charge'),
        payload: (s) => ({ orderId: s.sagaId, amount: s.data.amount }),
        timeoutMs: 1000,
        retries: 1,
        retry: { baseDelayMs: 100 },
        compensation: { ...command('payment', 'refund'), payload: (s) => ({ orderId: s.sagaId, chargeId: (s.results.payment as { chargeId: string }).chargeId }) },
      },
      {
        name: 'inventory',
        ...command('inventory', 'reserve'),
        payload: (s) => ({ orderId: s.sagaId }),
        timeoutMs: 1000,
        compensation: { ...command('inventory', 'release'), payload: (s) => ({ orderId: s.sagaId }) },
      },
      { name: 'shipping', ...command('shipping', 'ship'), payload: (s) => ({ orderId: s.sagaId }), completesOn: { event: 'shipped' }, failsOn: { event: 'undeliverable' }, timeoutMs: 1000 },
    ],
    ...overrides,
  }
}

interface Harness {
  saga: Saga
  driver: TestDriver
  /** Messages the saga sent to participants, oldest first (taken). */
  sent(): Array<{ topic: string; key: unknown; envelope: Envelope; headers: Record<string, string> }>
  /** Dead letters (taken). */
  deadLetters(): DriverOutput[]
  /** The saga's own events (taken). */
  events(): Envelope[]
  start(orderId: string, amount?: number): Promise<Envelope>
  reply(to: Envelope, topic: string, options?: { status?: ResultStatus; payload?: unknown; event?: string }): Promise<Envelope>
  state(id: string): Promise<SagaState | undefined>
}

async function harness(def = definition(), errorPolicy: 'fail' | 'dead-letter' = 'fail'): Promise<Harness> {
  const saga = defineSaga(def)
  const driver = await createTestDriver(saga.topology, { startTime: START, errorPolicy })
  let outbox: Array<{ topic: string; key: unknown; envelope: Envelope; headers: Record<string, string> }> = []
  let events: Envelope[] = []
  let dead: DriverOutput[] = []
  // What the router put on the inbox goes to the coordinator, and what the coordinator sent is sorted out.
  const loop = async () => {
    for (;;) {
      const inbox = driver.take(saga.topics.inbox)
      for (const o of driver.take()) {
        if (o.topic.endsWith('.dlq')) {
          dead.push(o)
          continue
        }
        // Every topic the coordinator writes has its own sink, so the driver decodes with its serdes.
        const envelope = o.value as Envelope
        if (o.topic === saga.topics.events) events.push(envelope)
        else outbox.push({ topic: o.topic, key: o.key, envelope, headers: o.headers })
      }
      if (inbox.length === 0) return
      for (const o of inbox) await driver.pipe('inbox', { key: o.key, value: o.value, headers: o.headers })
    }
  }
  const origAdvance = driver.advanceTime.bind(driver)
  driver.advanceTime = async (ms: number) => {
    await origAdvance(ms)
    await loop()
  }
  return {
    saga,
    driver,
    sent: () => [outbox, (outbox = [])][0] as typeof outbox,
    events: () => [events, (events = [])][0] as Envelope[],
    deadLetters: () => [dead, (dead = [])][0] as DriverOutput[],
    async start(orderId, amount = 10) {
      const placed = createEnvelope({ kind: 'event', contextPath: 'orders', alias: 'order-placed', payload: { orderId, amount }, clientSessionId: 'sess-1', now: driver.now() })
      await driver.pipe('orders.events', { key: Buffer.from(orderId), value: placed })
      await loop()
      return placed
    },
    async reply(to, topic, options = {}) {
      const envelope =
        options.event === undefined
          ? followUp(to, { kind: 'result', alias: to.alias, status: options.status ?? 'ok', payload: options.payload ?? { ok: true }, now: driver.now() })
          : followUp(to, { kind: 'event', alias: options.event, payload: options.payload ?? {}, now: driver.now() })
      await driver.pipe(topic, { key: Buffer.from('x'), value: envelope })
      await loop()
      return envelope
    },
    state: async (id) => (await driver.storeEntries<string, SagaState>('sagas')).find((e) => e.key === id)?.value,
  }
}

const only = <T>(items: T[], what: string): T => {
  assert.equal(items.length, 1, `exactly one ${what}, got ${items.length}`)
  return items[0] as T
}

test('a saga runs its steps in order and ends once as completed; every message is a follow-up in one trace', async () => {
  const h = await harness()
  const placed = await h.start('o-1', 25)
  const charge = only(h.sent(), 'charge command')
  assert.equal(charge.topic, 'payment.commands')
  assert.equal(charge.key, 'o-1')
  assert.equal(charge.envelope.kind, 'command')
  assert.equal(charge.envelope.alias, 'charge')
  assert.deepEqual(charge.envelope.payload, { orderId: 'o-1', amount: 25 })
  assert.equal(charge.envelope.requestId, stepRequestId('order', { sagaId: 'o-1', step: 0, phase: 'do', attempt: 1 }))
  assert.equal(charge.envelope.clientSessionId, undefined, 'participants answer the saga, not the client')
  assert.equal(charge.envelope.deadline, START + 1000)
  assert.equal(charge.headers.traceparent, charge.envelope.trace?.traceparent)
  assert.deepEqual(charge.envelope.breadcrumbs.map((b) => b.id), [placed.id])

  const charged = await h.reply(charge.envelope, 'payment.results', { payload: { chargeId: 'ch-1' } })
  const reserve = only(h.sent(), 'reserve command')
  assert.equal(reserve.topic, 'inventory.commands')
  assert.deepEqual(reserve.envelope.breadcrumbs.map((b) => b.id), [placed.id, charge.envelope.id, charged.id])
  const reserved = await h.reply(reserve.envelope, 'inventory.results')
  const ship = only(h.sent(), 'ship command')
  // The ship command's ok result does not complete the step: its `shipped` event does.
  await h.reply(ship.envelope, 'shipping.results')
  assert.equal((await h.state('o-1'))?.status, 'running')
  await h.reply(ship.envelope, 'shipping.events', { event: 'shipped', payload: { tracking: 't-9' } })

  const events = h.events()
  assert.deepEqual(events.map((e) => e.alias), ['saga-started', 'saga-step-completed', 'saga-step-completed', 'saga-step-completed', 'saga-completed'])
  for (const e of [...events, charge.envelope, reserve.envelope, ship.envelope]) assert.equal(traceId(e.trace as TraceContext), traceId(placed.trace as TraceContext), 'one trace for the whole saga')
  for (const e of events) {
    assert.equal(e.requestId, placed.requestId, "the saga's events carry the starting request id")
    assert.equal(e.clientSessionId, 'sess-1')
  }
  const done = events.at(-1) as Envelope
  assert.deepEqual((done.payload as { results: unknown }).results, { payment: { chargeId: 'ch-1' }, inventory: { ok: true }, shipping: { tracking: 't-9' } })
  assert.ok(done.breadcrumbs.some((b) => b.id === reserved.id))
  const state = await h.state('o-1')
  assert.equal(state?.status, 'completed')
  assert.equal(state?.endedAt, START)
  assert.deepEqual(h.sent(), [], 'nothing more is sent')
  assert.equal(h.saga.metrics.completed, 1)

  // A reply after the end changes nothing.
  await h.reply(ship.envelope, 'shipping.events', { event: 'shipped' })
  assert.deepEqual(h.events(), [])
  assert.equal(h.saga.metrics.staleReplies, 1)
})

test('a failing step compensates the steps done before it, newest first, and ends once as compensated', async () => {
  const h = await harness()
  await h.start('o-2')
  await h.reply(only(h.sent(), 'charge').envelope, 'payment.results', { payload: { chargeId: 'ch-2' } })
  await h.reply(only(h.sent(), 'reserve').envelope, 'inventory.results')
  await h.reply(only(h.sent(), 'ship').envelope, 'shipping.events', { event: 'undeliverable' })
  const release = only(h.sent(), 'release')
  assert.equal(release.topic, 'inventory.commands')
  assert.equal(release.envelope.alias, 'release')
  assert.equal(parseStepRequestId('order', release.envelope.requestId)?.phase, 'undo')
  assert.equal((await h.state('o-2'))?.status, 'compensating')
  await h.reply(release.envelope, 'inventory.results')
  const refund = only(h.sent(), 'refund')
  assert.deepEqual(refund.envelope.payload, { orderId: 'o-2', chargeId: 'ch-2' })
  await h.reply(refund.envelope, 'payment.results')
  assert.deepEqual(h.sent(), [])
  assert.deepEqual(
    h.events().map((e) => e.alias),
    ['saga-started', 'saga-step-completed', 'saga-step-completed', 'saga-compensating', 'saga-step-compensated', 'saga-step-compensated', 'saga-compensated'],
  )
  const state = await h.state('o-2')
  assert.equal(state?.status, 'compensated')
  assert.deepEqual(state?.failure, { step: 'shipping', code: 'WEIR_ERR_NON_RETRIABLE', message: 'event undeliverable' })
})

test('an error result of a non-retriable kind fails the step at once; a first step needs no compensation', async () => {
  const h = await harness()
  await h.start('o-3')
  await h.reply(only(h.sent(), 'charge').envelope, 'payment.results', { status: 'error', payload: { code: 'WEIR_ERR_NON_RETRIABLE', message: 'card declined' } })
  assert.deepEqual(h.sent(), [], 'nothing to compensate: the failed step did not happen')
  assert.deepEqual(h.events().map((e) => e.alias), ['saga-started', 'saga-compensating', 'saga-compensated'])
  assert.equal((await h.state('o-3'))?.failure?.message, 'card declined')
})

test('a step that times out is retried after its backoff; a reply of the old attempt is stale', async () => {
  const h = await harness()
  await h.start('o-4')
  const first = only(h.sent(), 'charge 1')
  await h.driver.advanceTime(1000)
  assert.deepEqual(h.sent(), [], 'the retry waits for its backoff')
  assert.equal((await h.state('o-4'))?.attempt, 2)
  await h.driver.advanceTime(100)
  const second = only(h.sent(), 'charge 2')
  assert.equal(parseStepRequestId('order', second.envelope.requestId)?.attempt, 2)
  await h.reply(first.envelope, 'payment.results', { payload: { chargeId: 'late' } })
  assert.deepEqual(h.sent(), [], 'the first attempt no longer counts')
  assert.equal(h.saga.metrics.staleReplies, 1)
  await h.reply(second.envelope, 'payment.results', { payload: { chargeId: 'ch-4' } })
  assert.equal(only(h.sent(), 'reserve').envelope.alias, 'reserve')
  assert.deepEqual((await h.state('o-4'))?.results, { payment: { chargeId: 'ch-4' } })
})

test('a step that keeps timing out fails; its own compensation runs too (it may have taken effect late)', async () => {
  const h = await harness()
  await h.start('o-5')
  await h.reply(only(h.sent(), 'charge').envelope, 'payment.results', { payload: { chargeId: 'ch-5' } })
  only(h.sent(), 'reserve')
  await h.driver.advanceTime(1000)
  const release = only(h.sent(), 'release')
  assert.equal(release.envelope.alias, 'release')
  // A compensation that fails is tried again until it succeeds.
  await h.reply(release.envelope, 'inventory.results', { status: 'error', payload: { code: 'WEIR_ERR_RETRIES_EXHAUSTED', message: 'db down' } })
  assert.deepEqual(h.sent(), [])
  await h.driver.advanceTime(500)
  const again = only(h.sent(), 'release 2')
  assert.equal(parseStepRequestId('order', again.envelope.requestId)?.attempt, 2)
  await h.driver.advanceTime(1000)
  assert.deepEqual(h.sent(), [], 'the timed-out compensation waits for its (longer) backoff')
  await h.driver.advanceTime(1000)
  const third = only(h.sent(), 'release 3 after a timeout')
  await h.reply(third.envelope, 'inventory.results')
  await h.reply(only(h.sent(), 'refund').envelope, 'payment.results')
  const state = await h.state('o-5')
  assert.equal(state?.status, 'compensated')
  assert.equal(state?.failure?.code, 'WEIR_ERR_DEADLINE_EXCEEDED')
  assert.equal(h.events().filter((e) => e.alias === 'saga-compensated').length, 1)
})

test('a second start of a saga id is ignored; other messages pass the router by', async () => {
  const h = await harness()
  await h.start('o-6')
  await h.start('o-6')
  assert.equal(h.sent().length, 1)
  assert.equal(h.saga.metrics.duplicateStarts, 1)
  const other = createEnvelope({ kind: 'result', contextPath: 'payment', alias: 'charge', status: 'ok', payload: {}, requestId: 'client-request-1' })
  await h.driver.pipe('payment.results', { key: Buffer.from('k'), value: other })
  assert.deepEqual(h.driver.take(h.saga.topics.inbox), [])
  assert.equal(h.saga.metrics.ignored, 1)
})

test('a reply for an unknown saga id is dead-lettered with WEIR_ERR_SAGA_UNKNOWN and the saga goes on', async () => {
  const h = await harness(definition(), 'dead-letter')
  const ghost = createEnvelope({ kind: 'command', contextPath: 'payment', alias: 'charge', payload: {}, id: stepRequestId('order', { sagaId: 'nobody', step: 0, phase: 'do', attempt: 1 }) })
  await h.reply({ ...ghost, requestId: ghost.id }, 'payment.results')
  const [letter, ...more] = h.deadLetters()
  assert.equal(more.length, 0)
  assert.equal(letter?.topic, `${h.saga.topics.inbox}.dlq`)
  assert.equal(letter?.headers['weir.error.code'], 'WEIR_ERR_SAGA_UNKNOWN')
  assert.equal(h.saga.metrics.unknownReplies, 1)
  await h.start('o-7')
  assert.equal(h.sent().length, 1, 'later sagas run')
})

test('a start without a saga id is dead-lettered with WEIR_ERR_SAGA_START_INVALID', async () => {
  const h = await harness(definition(), 'dead-letter')
  const placed = createEnvelope({ kind: 'event', contextPath: 'orders', alias: 'order-placed', payload: { amount: 1 } })
  await h.driver.pipe('orders.events', { key: Buffer.from('x'), value: placed })
  const [letter] = h.driver.take('orders.events.dlq')
  assert.equal(letter?.topic, 'orders.events.dlq')
  assert.equal(letter?.headers['weir.error.code'], 'WEIR_ERR_SAGA_START_INVALID')
})

test('an ended saga is forgotten after retentionMs; a reply after that is unknown', async () => {
  const h = await harness(definition({ retentionMs: 60_000 }), 'dead-letter')
  await h.start('o-8')
  const charge = only(h.sent(), 'charge')
  await h.reply(charge.envelope, 'payment.results', { status: 'error', payload: { code: 'WEIR_ERR_NON_RETRIABLE', message: 'no' } })
  assert.equal((await h.state('o-8'))?.status, 'compensated')
  await h.driver.advanceTime(60_000)
  assert.equal(await h.state('o-8'), undefined)
  await h.reply(charge.envelope, 'payment.results')
  assert.equal(h.deadLetters()[0]?.headers['weir.error.code'], 'WEIR_ERR_SAGA_UNKNOWN')
})

test('a definition is validated at once, every problem listed', () => {
  assert.throws(
    () => defineSaga({ name: 'bad name', start: { topic: '', alias: 'x', sagaId: () => 'a' }, replyTopics: ['r'], steps: [{ name: 'a', topic: 't', contextPath: 'c', alias: 'a', payload: () => 1, kind: 'event', retries: -1 }] }),
    (error: unknown) => {
      assert.ok(isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS'))
      const violations = error.details.violations as string[]
      assert.equal(violations.length, 4, violations.join('\n'))
      return true
    },
  )
})

test('a step may send an event for a participant that reacts to events, completed by the event it answers with', async () => {
  const base = definition()
  const h = await harness({
    ...base,
    replyTopics: [...base.replyTopics, 'loyalty.events'],
    steps: [{ name: 'points', topic: 'loyalty.inbox', kind: 'event', contextPath: 'loyalty', alias: 'award-points', payload: (s) => ({ orderId: s.sagaId }), completesOn: { event: 'points-awarded' } }],
  })
  await h.start('o-9')
  const award = only(h.sent(), 'award-points event')
  assert.equal(award.topic, 'loyalty.inbox')
  assert.equal(award.envelope.kind, 'event')
  assert.equal(award.envelope.deadline, undefined, 'only commands carry a deadline')
  await h.reply(award.envelope, 'loyalty.events', { event: 'points-awarded', payload: { points: 5 } })
  assert.equal((await h.state('o-9'))?.status, 'completed')
  assert.deepEqual((await h.state('o-9'))?.results, { points: { points: 5 } })
})

test("a participant's timeout result is retried like the saga's own timeout", async () => {
  const h = await harness()
  await h.start('o-10')
  const charge = only(h.sent(), 'charge')
  await h.reply(charge.envelope, 'payment.results', { status: 'timeout', payload: { code: 'WEIR_ERR_DEADLINE_EXCEEDED', message: 'no result before the deadline' } })
  await h.driver.advanceTime(100)
  const retry = only(h.sent(), 'charge 2')
  assert.equal(parseStepRequestId('order', retry.envelope.requestId)?.attempt, 2)
  const state = await h.state('o-10')
  assert.equal(state?.history.at(-1)?.event, 'step-started')
  assert.match(state?.history.at(-2)?.detail ?? '', /WEIR_ERR_DEADLINE_EXCEEDED/)
})
