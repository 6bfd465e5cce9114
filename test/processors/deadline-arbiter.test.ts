// The deadline arbiter (processors/deadline-arbiter.ts) alone, on the test driver's clock: one outcome per request,
// late results marked with the outcome they lost to, decisions forgotten after their retention. Decisions are the
// arbiter's timers; a store of the older layout (an entry per request beside its timers) is still read for the
// outcome of requests decided there and emptied as they expire.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createEnvelope, followUp } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { deadlineArbiter, requestKey } from '../../processors/deadline-arbiter.ts'
import { defineTopology } from '../../topology/define.ts'
import type { Processor, ProcessorContext } from '../../topology/processor.ts'
import { createTestDriver } from '../../topology/test-driver.ts'
import type { TestDriver } from '../../topology/test-driver.ts'

const START = 1_000_000
const RETENTION = 60_000
const TTL = 5_000

function command(requestId: string): Envelope {
  return createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'shop', alias: 'place', payload: {}, requestId, clientSessionId: 's1', deadline: START + TTL, now: START })
}

function result(of: Envelope, status: 'ok' | 'error' = 'ok'): Envelope {
  return followUp(of, { kind: 'result', alias: of.alias, status, payload: { status }, now: START })
}

/**
 * The arbiter, optionally over a store of the older layout; records keyed `old-open` / `old-done:<outcome>` write
 * what the older layout wrote for an open or a decided request, through the same context.
 */
function arbiterTopology(olderStore: boolean) {
  const factory = deadlineArbiter({ retentionMs: RETENTION, ...(olderStore ? { store: 'decisions' } : {}) })
  const withOlderWrites = (): Processor<unknown, Envelope> => {
    const inner = factory()
    let context: ProcessorContext
    return {
      async init(c) {
        context = c
        await inner.init?.(c)
      },
      async process(record) {
        const key = String(record.key)
        const request = requestKey(record.value)
        if (key === 'old-open') {
          await context.store('decisions').put(request, { state: 'open', deadline: record.value.deadline })
          await context.timers.set(`ttl:${request}`, record.value.deadline as number, record.value)
        } else if (key.startsWith('old-done:')) {
          await context.store('decisions').put(request, { state: 'done', outcome: key.slice(9), at: context.now() })
          await context.timers.set(`gc:${request}`, context.now() + RETENTION, request)
        } else {
          await inner.process(record)
        }
      },
      onTimer: (timer) => inner.onTimer?.(timer),
    }
  }
  const envelopes = { keySerde: 'string' as const, valueSerde: 'envelope' as const }
  const topology = defineTopology({
    sources: { in: { topic: 'in', ...envelopes } },
    ...(olderStore ? { stores: { decisions: { keySerde: 'string', valueSerde: 'json' } } } : {}),
    processors: { arbiter: { from: ['in'], ...(olderStore ? { stores: ['decisions'] } : {}), timers: true, use: withOlderWrites } },
    sinks: { outcomes: { from: ['arbiter'], topic: 'outcomes', ...envelopes }, late: { from: ['arbiter'], topic: 'late', ...envelopes } },
  })
  return { topology, metrics: factory.metrics }
}

function taken(driver: TestDriver, topic: string): string[] {
  return driver.take(topic).map((o) => {
    const envelope = o.value as Envelope
    return `${envelope.requestId}:${envelope.status}${o.headers['weir.late'] === undefined ? '' : `(lost to ${o.headers['weir.late']})`}`
  })
}

test('one outcome per request: a result before the deadline, the timeout after it; later results are late', async () => {
  const { topology, metrics } = arbiterTopology(false)
  const driver = await createTestDriver(topology, { startTime: START, errorPolicy: 'fail' })
  const a = command('a')
  const b = command('b')
  await driver.pipe('in', { key: 'a', value: a })
  await driver.pipe('in', { key: 'b', value: b })
  await driver.pipe('in', { key: 'a', value: result(a, 'error') })
  await driver.pipe('in', { key: 'a', value: a }) // a registration after the outcome is ignored
  assert.deepEqual(taken(driver, 'outcomes'), ['a:error'])
  await driver.advanceTime(TTL)
  assert.deepEqual(taken(driver, 'outcomes'), ['b:timeout'])
  await driver.pipe('in', { key: 'a', value: result(a) })
  await driver.pipe('in', { key: 'b', value: result(b) })
  assert.deepEqual(taken(driver, 'late'), ['a:ok(lost to error)', 'b:ok(lost to timeout)'])
  assert.deepEqual(taken(driver, 'outcomes'), [])
  assert.equal(metrics.timeouts, 1)
  assert.equal(metrics.lateResults, 2)

  // Past the retention the decisions are forgotten: a result now decides again (as an unregistered one).
  await driver.advanceTime(RETENTION)
  await driver.pipe('in', { key: 'a', value: result(a) })
  assert.deepEqual(taken(driver, 'outcomes'), ['a:ok'])
  assert.equal(metrics.unregisteredResults, 1)
  await driver.close()
})

test('requests open or decided in the older layout keep their outcome, and that store empties as they expire', async () => {
  const { topology } = arbiterTopology(true)
  const driver = await createTestDriver(topology, { startTime: START, errorPolicy: 'fail' })
  const open = command('open')
  const done = command('done')
  await driver.pipe('in', { key: 'old-open', value: open })
  await driver.pipe('in', { key: 'old-done:error', value: done })
  await driver.pipe('in', { key: 'done', value: result(done) })
  assert.deepEqual(taken(driver, 'late'), ['done:ok(lost to error)'], 'the older decision is read for its outcome')
  await driver.advanceTime(TTL)
  assert.deepEqual(taken(driver, 'outcomes'), ['open:timeout'], 'the older open request times out once')
  await driver.pipe('in', { key: 'open', value: result(open) })
  assert.deepEqual(taken(driver, 'late'), ['open:ok(lost to timeout)'])
  await driver.advanceTime(RETENTION)
  assert.deepEqual(await driver.storeEntries('decisions'), [], 'every older entry is gone once its request\'s decision expired')
  await driver.close()
})
