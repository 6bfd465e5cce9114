// Consumed-id dedupe (processors/dedupe.ts) on the test driver's clock: an id is dropped as a duplicate for
// its retention, counted from when it was first seen (a duplicate does not extend it), and accepted again
// once the retention is over. Seen ids are the processor's timers; a store of the older layout (an entry per id
// beside its timer) is still honoured and emptied as its ids expire. Through the command service too
// (`dedupeRetentionMs`): a command re-sent after the retention runs again.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { createCommandRegistry } from '../../processors/command-router.ts'
import { commandService } from '../../processors/command-service.ts'
import { dedupe } from '../../processors/dedupe.ts'
import { defineTopology } from '../../topology/define.ts'
import type { Processor, ProcessorContext } from '../../topology/processor.ts'
import type { StreamRecord } from '../../topology/record.ts'
import { createTestDriver } from '../../topology/test-driver.ts'

const START = 1_000_000

function dedupeTopology(retentionMs: number) {
  const factory = dedupe({ retentionMs, idOf: (record: StreamRecord) => String(record.key) })
  const topology = defineTopology({
    sources: { input: { topic: 'input', keySerde: 'string', valueSerde: 'string' } },
    processors: { dedupe: { from: ['input'], timers: true, use: factory } },
    sinks: { out: { from: ['dedupe'], topic: 'output', keySerde: 'string', valueSerde: 'string' } },
  })
  return { topology, metrics: factory.metrics }
}

/**
 * The dedupe processor over a store of the older layout, with a way in for records keyed `old:<id>`: they write
 * what the older layout wrote for a seen id (a store entry and its expiry timer), through the same context.
 */
function olderLayoutTopology(retentionMs: number) {
  const factory = dedupe({ store: 'seen', retentionMs, idOf: (record: StreamRecord) => String(record.key) })
  const withOlderWrites = (): Processor => {
    const inner = factory()
    let context: ProcessorContext
    return {
      async init(c) {
        context = c
        await inner.init?.(c)
      },
      async process(record) {
        const key = String(record.key)
        if (!key.startsWith('old:')) return inner.process(record)
        const id = key.slice(4)
        await context.store<string, number>('seen').put(id, context.now())
        await context.timers.set(`dedupe:${id}`, context.now() + retentionMs, id)
      },
      onTimer: (timer) => inner.onTimer?.(timer),
    }
  }
  const topology = defineTopology({
    sources: { input: { topic: 'input', keySerde: 'string', valueSerde: 'string' } },
    stores: { seen: { keySerde: 'string', valueSerde: 'json' } },
    processors: { dedupe: { from: ['input'], stores: ['seen'], timers: true, use: withOlderWrites } },
    sinks: { out: { from: ['dedupe'], topic: 'output', keySerde: 'string', valueSerde: 'string' } },
  })
  return { topology, metrics: factory.metrics }
}

test('an id is a duplicate for its retention from when it was first seen, and accepted again after it', async () => {
  const retentionMs = 60_000
  const { topology, metrics } = dedupeTopology(retentionMs)
  const driver = await createTestDriver(topology, { startTime: START, errorPolicy: 'fail' })
  const passed = () => driver.take('output').map((o) => `${String(o.key)}:${String(o.value)}`)

  await driver.pipe('input', { key: 'a', value: 'first' })
  await driver.pipe('input', { key: 'b', value: 'first' })
  assert.deepEqual(passed(), ['a:first', 'b:first'])

  // Within the retention: dropped, however close to its end. The duplicate does not extend it.
  await driver.advanceTime(retentionMs - 1)
  await driver.pipe('input', { key: 'a', value: 'again' })
  assert.deepEqual(passed(), [], 'a duplicate within the retention is dropped')
  assert.equal(metrics.duplicates, 1)
  assert.equal(metrics.expired, 0)

  // The retention is over: the ids are forgotten.
  await driver.advanceTime(1)
  assert.equal(metrics.expired, 2)
  await driver.pipe('input', { key: 'a', value: 'after' })
  assert.deepEqual(passed(), ['a:after'], 'accepted again after the retention')

  // Accepted again, it is remembered again for a full retention, counted from now.
  await driver.advanceTime(retentionMs - 1)
  await driver.pipe('input', { key: 'a', value: 'too soon' })
  assert.deepEqual(passed(), [])
  await driver.advanceTime(1)
  await driver.pipe('input', { key: 'a', value: 'later' })
  assert.deepEqual(passed(), ['a:later'])
  assert.equal(metrics.passed, 4)
  assert.equal(metrics.duplicates, 2)
  await driver.close()
})

test('ids seen in the older layout stay duplicates for their retention, and expiring empties that store', async () => {
  const retentionMs = 60_000
  const { topology, metrics } = olderLayoutTopology(retentionMs)
  const driver = await createTestDriver(topology, { startTime: START, errorPolicy: 'fail' })
  const passed = () => driver.take('output').map((o) => `${String(o.key)}:${String(o.value)}`)

  await driver.pipe('input', { key: 'old:a', value: '' })
  await driver.pipe('input', { key: 'b', value: 'new' })
  assert.deepEqual((await driver.storeEntries('seen')).map((e) => e.key), ['a'], 'new ids are not written to the store')
  await driver.advanceTime(retentionMs - 1)
  await driver.pipe('input', { key: 'a', value: 'again' })
  await driver.pipe('input', { key: 'b', value: 'again' })
  assert.deepEqual(passed(), ['b:new'], 'both ids are duplicates within their retention')
  await driver.advanceTime(1)
  assert.equal(metrics.expired, 2)
  assert.deepEqual(await driver.storeEntries('seen'), [], 'the older entry is deleted when it expires')
  await driver.pipe('input', { key: 'a', value: 'after' })
  assert.deepEqual(passed(), ['a:after'])
  await driver.close()
})

test('the command service: a command re-sent within dedupeRetentionMs runs once, re-sent after it runs again', async () => {
  let calls = 0
  const registry = createCommandRegistry({
    topicAlias: 'orders',
    topics: { commands: 'orders.commands', results: 'orders.results', events: 'orders.events' },
    handlers: [
      {
        contextPath: 'shop',
        alias: 'place',
        payloadSchema: { type: 'object' },
        handle: async () => ({ call: ++calls }),
      },
    ],
  })
  // Decisions are kept as long as ids, so the second run's result is an outcome, not a late result.
  const service = commandService({ registry, dedupeRetentionMs: 10_000, decisionRetentionMs: 10_000 })
  const driver = await createTestDriver(service.topology, { startTime: START, errorPolicy: 'fail' })
  const command = createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'shop', alias: 'place', payload: {}, now: START })
  const outcomes = () => driver.take(service.topics.outcomes).map((o) => (o.value as Envelope).payload)

  await driver.pipe('commands', { key: 'k', value: command })
  await driver.advanceTime(9_999)
  await driver.pipe('commands', { key: 'k', value: command })
  assert.equal(calls, 1, 'within the retention the re-sent command is dropped')
  assert.deepEqual(outcomes(), [{ call: 1 }])
  assert.equal(service.metrics.dedupe.duplicates, 1)

  await driver.advanceTime(1)
  await driver.pipe('commands', { key: 'k', value: command })
  assert.equal(calls, 2, 'after the retention the same command id runs again')
  assert.deepEqual(outcomes(), [{ call: 2 }])
  await driver.close()
})
