// Consumed-id dedupe (processors/dedupe.ts) on the test driver's clock: an id is dropped as a duplicate for
// its retention, counted from when it was first seen (a duplicate does not extend it), and accepted again
// once the retention is over; the expiry removes the id from the store. Through the command service too
// (`dedupeRetentionMs`): a command re-sent after the retention runs again.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { createCommandRegistry } from '../../processors/command-router.ts'
import { commandService } from '../../processors/command-service.ts'
import { dedupe } from '../../processors/dedupe.ts'
import { defineTopology } from '../../topology/define.ts'
import type { StreamRecord } from '../../topology/record.ts'
import { createTestDriver } from '../../topology/test-driver.ts'

const START = 1_000_000

function dedupeTopology(retentionMs: number) {
  const factory = dedupe({ store: 'seen', retentionMs, idOf: (record: StreamRecord) => String(record.key) })
  const topology = defineTopology({
    sources: { input: { topic: 'input', keySerde: 'string', valueSerde: 'string' } },
    stores: { seen: { keySerde: 'string', valueSerde: 'json' } },
    processors: { dedupe: { from: ['input'], stores: ['seen'], timers: true, use: factory } },
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
  assert.deepEqual((await driver.storeEntries('seen')).map((e) => e.key).sort(), ['a', 'b'])

  // Within the retention: dropped, however close to its end. The duplicate does not extend it.
  await driver.advanceTime(retentionMs - 1)
  await driver.pipe('input', { key: 'a', value: 'again' })
  assert.deepEqual(passed(), [], 'a duplicate within the retention is dropped')
  assert.equal(metrics.duplicates, 1)
  assert.equal(metrics.expired, 0)

  // The retention is over: the ids are forgotten, and the store holds none of them.
  await driver.advanceTime(1)
  assert.equal(metrics.expired, 2)
  assert.deepEqual(await driver.storeEntries('seen'), [], 'expired ids are removed from the store')
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
