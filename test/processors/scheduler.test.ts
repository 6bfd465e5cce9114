// The scheduler's logic on the test driver (its Kafka behaviour, exactly once across SIGKILL, is in
// scheduler.kafka.test.ts): delivery at the due time, replacement and cancel by id, and the memory of
// delivered ids that keeps a re-sent or re-imported request from being delivered twice.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { dueDeliverySerde, scheduler, schedulerRequestSerde } from '../../processors/scheduler.ts'
import type { SchedulerOptions, SchedulerRequest } from '../../processors/scheduler.ts'
import { defineTopology } from '../../topology/define.ts'
import { createTestDriver } from '../../topology/test-driver.ts'
import type { StreamRecord } from '../../topology/record.ts'
import type { TestDriver } from '../../topology/test-driver.ts'

const START = 1_000_000

async function driverWith(options: SchedulerOptions = {}) {
  const factory = scheduler(options)
  const topology = defineTopology({
    sources: { schedule: { topic: 'jobs.scheduler', keySerde: 'string', valueSerde: schedulerRequestSerde } },
    processors: { scheduler: { from: ['schedule'], timers: true, use: factory } },
    sinks: {
      deliveries: { from: ['scheduler'], topic: (record: StreamRecord) => (record.value as { topic: string }).topic, keySerde: 'buffer', valueSerde: dueDeliverySerde },
    },
  })
  const driver = await createTestDriver(topology, { startTime: START, errorPolicy: 'fail' })
  return { driver, metrics: factory.metrics }
}

const schedule = (id: string, deliverAt: number, value = id): SchedulerRequest => ({ op: 'schedule', id, deliverAt, topic: 'jobs', value: Buffer.from(value) })
const send = (driver: TestDriver, request: SchedulerRequest) => driver.pipe('schedule', { key: request.id, value: request })
const delivered = (driver: TestDriver) => driver.take('jobs').map((o) => `${o.headers['weir.scheduled.id']}=${Buffer.from(o.value as Uint8Array).toString()}`)

test('a request is delivered at its time, once; the same id replaces it before then; cancel removes it', async (t) => {
  const { driver, metrics } = await driverWith()
  t.after(() => driver.close())
  await send(driver, schedule('a', START + 100, 'first'))
  await send(driver, schedule('a', START + 200, 'second'))
  await send(driver, schedule('b', START + 150))
  await send(driver, { op: 'cancel', id: 'b' })
  await driver.advanceTime(199)
  assert.deepEqual(delivered(driver), [])
  await driver.advanceTime(1)
  assert.deepEqual(delivered(driver), ['a=second'])
  await driver.advanceTime(10_000)
  assert.deepEqual(delivered(driver), [])
  assert.equal(metrics.cancelled, 1)
  // Not remembered (the default): the same id scheduled again after its delivery is delivered again.
  await send(driver, schedule('a', START + 300, 'again'))
  await driver.advanceTime(1)
  assert.deepEqual(delivered(driver), ['a=again'])
})

test('with rememberDeliveredMs a delivered id is not delivered again within the window, then may be', async (t) => {
  const { driver, metrics } = await driverWith({ rememberDeliveredMs: 60_000 })
  t.after(() => driver.close())
  await send(driver, schedule('job-1', START + 100, 'first'))
  await send(driver, schedule('job-2', START + 5_000))
  await driver.advanceTime(100)
  assert.deepEqual(delivered(driver), ['job-1=first'])
  // Re-imported after its delivery (already due, or not): dropped; a cancel does not erase the memory.
  await send(driver, schedule('job-1', START))
  await send(driver, schedule('job-1', START + 1_000, 'later'))
  await send(driver, { op: 'cancel', id: 'job-1' })
  await send(driver, schedule('job-1', START + 1_000, 'after cancel'))
  await driver.advanceTime(5_000)
  assert.deepEqual(delivered(driver), ['job-2=job-2'])
  assert.equal(metrics.duplicates, 3)
  assert.equal(metrics.cancelled, 0)
  // A pending (not yet delivered) id is still replaced and cancelled as before.
  await send(driver, schedule('job-3', START + 20_000, 'first'))
  await send(driver, schedule('job-3', START + 21_000, 'second'))
  await send(driver, schedule('job-4', START + 20_000))
  await send(driver, { op: 'cancel', id: 'job-4' })
  await driver.advanceTime(20_000)
  assert.deepEqual(delivered(driver), ['job-3=second'])
  assert.equal(metrics.cancelled, 1)
  // The marker of job-1 expires 60 s after its delivery: from then on the id is new again.
  await driver.advanceTime(START + 100 + 60_000 - driver.now())
  await send(driver, schedule('job-1', driver.now(), 'new'))
  await driver.advanceTime(1)
  assert.deepEqual(delivered(driver), ['job-1=new'])
  assert.equal(metrics.delivered, 4)
})

test('rememberDeliveredMs is validated', () => {
  assert.throws(() => scheduler({ rememberDeliveredMs: -1 }), (e) => isWeirError(e) && e.code === 'WEIR_ERR_INVALID_OPTIONS')
  assert.throws(() => scheduler({ rememberDeliveredMs: 1.5 }), (e) => isWeirError(e) && e.code === 'WEIR_ERR_INVALID_OPTIONS')
})
