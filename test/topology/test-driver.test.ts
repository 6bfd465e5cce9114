// Task semantics through the in-process test driver (no Kafka): stores, staging, timers, punctuations.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { defineTopology } from '../../topology/define.ts'
import type { FiredTimer, ProcessorContext } from '../../topology/processor.ts'
import { StreamRecord } from '../../topology/record.ts'
import { createTestDriver } from '../../topology/test-driver.ts'


function reminders() {
  // Commands: "set:<at>", "cancel", "fail"; per key: counts writes; timers remind at <at>.
  return defineTopology({
    sources: { in: { topic: 'in', keySerde: 'string', valueSerde: 'string' } },
    stores: { writes: { keySerde: 'string', valueSerde: 'json' } },
    processors: {
      remind: {
        from: ['in'],
        stores: ['writes'],
        timers: true,
        use: () => {
          let ctx: ProcessorContext
          return {
            init(c) {
              ctx = c
            },
            async process(record: StreamRecord<string, string>) {
              const writes = ctx.store<string, number>('writes')
              await writes.put(record.key, ((await writes.get(record.key)) ?? 0) + 1)
              if (record.value.startsWith('set:')) await ctx.timers.set(record.key, Number(record.value.slice(4)), { note: record.key })
              if (record.value === 'cancel') await ctx.forward(record.withValue(`cancelled=${await ctx.timers.cancel(record.key)}`), 'out')
              if (record.value === 'fail') throw new Error('boom')
            },
            async onTimer(timer: FiredTimer<{ note: string }>) {
              await ctx.forward(new StreamRecord(timer.key, `fired:${timer.payload.note}@${timer.at}`, timer.firedAt), 'out')
            },
          }
        },
      },
    },
    sinks: { out: { from: ['remind'], topic: 'out', keySerde: 'string', valueSerde: 'string' } },
  })
}

test('timers fire once at their time, can be replaced and cancelled', async () => {
  const driver = await createTestDriver(reminders(), { startTime: 1000 })
  await driver.pipe('in', { key: 'a', value: 'set:1500' })
  await driver.pipe('in', { key: 'b', value: 'set:1200' })
  await driver.pipe('in', { key: 'c', value: 'set:1300' })
  await driver.pipe('in', { key: 'a', value: 'set:1600' }) // replaces a's timer
  await driver.pipe('in', { key: 'c', value: 'cancel' })
  assert.deepEqual(driver.take().map((o) => o.value), ['cancelled=true'])
  await driver.advanceTime(250) // now 1250
  assert.deepEqual(driver.take().map((o) => o.value), ['fired:b@1200'])
  await driver.advanceTime(1000)
  assert.deepEqual(driver.take().map((o) => o.value), ['fired:a@1600'])
  await driver.advanceTime(10_000)
  assert.deepEqual(driver.take(), [], 'nothing fires twice')
  await driver.pipe('in', { key: 'c', value: 'cancel' })
  assert.deepEqual(driver.take().map((o) => o.value), ['cancelled=false'])
  assert.equal(driver.counters.timersFired, 2)
})

test('a failing record leaves no state behind and goes to the dead-letter topic', async () => {
  const driver = await createTestDriver(reminders(), { errorPolicy: 'dead-letter' })
  await driver.pipe('in', { key: 'k', value: 'x' })
  await driver.pipe('in', { key: 'k', value: 'fail', headers: { trace: 't1' } })
  await driver.pipe('in', { key: 'k', value: 'y' })
  assert.deepEqual(await driver.storeEntries('writes'), [{ key: 'k', value: 2 }], 'the failing record did not count')
  const [dead] = driver.outputs('in.dlq')
  assert.ok(dead)
  assert.equal(dead.headers['weir.error.code'], 'WEIR_ERR_PROCESSING')
  assert.equal(dead.headers['weir.origin.offset'], '1')
  assert.equal(dead.headers['weir.processor'], 'remind')
  assert.equal(dead.headers.trace, 't1')
  assert.equal(driver.counters.deadLettered, 1)
})

test('the fail policy stops with a coded error; skip counts and moves on', async () => {
  const failing = await createTestDriver(reminders(), { errorPolicy: 'fail' })
  await assert.rejects(failing.pipe('in', { key: 'k', value: 'fail' }), (e: unknown) => isWeirError(e, 'WEIR_ERR_PROCESSING'))
  const skipping = await createTestDriver(reminders(), { errorPolicy: 'skip' })
  await skipping.pipe('in', { key: 'k', value: 'fail' })
  assert.equal(skipping.counters.skipped, 1)
  assert.deepEqual(skipping.outputs(), [])
})

test('undecodable input is a deserialization dead letter', async () => {
  const topology = defineTopology({
    sources: { in: { topic: 'in', valueSerde: 'envelope' } },
    processors: { p: { from: ['in'], use: () => ({ process() {} }) } },
  })
  const driver = await createTestDriver(topology, { errorPolicy: 'dead-letter' })
  await driver.pipe('in', { value: null })
  const [dead] = driver.outputs('in.dlq')
  assert.equal(dead?.headers['weir.error.code'], 'WEIR_ERR_ENVELOPE_DECODE')
})

test('wall-clock and stream-time punctuations', async () => {
  const seen: string[] = []
  const topology = defineTopology({
    sources: { in: { topic: 'in', valueSerde: 'string' } },
    processors: {
      p: {
        from: ['in'],
        use: () => ({
          init(ctx: ProcessorContext) {
            ctx.schedule(100, 'wall-clock', (t) => void seen.push(`wall@${t}`))
            const handle = ctx.schedule(50, 'stream-time', (t) => void seen.push(`stream@${t}`))
            ctx.schedule(10_000, 'wall-clock', () => handle.cancel())
          },
          process() {},
        }),
      },
    },
  })
  const driver = await createTestDriver(topology, { startTime: 0 })
  await driver.pipe('in', { value: 'a', timestamp: 60 })
  await driver.advanceTime(100)
  await driver.pipe('in', { value: 'b', timestamp: 200 })
  assert.deepEqual(seen, ['stream@60', 'wall@100', 'stream@200'])
})
