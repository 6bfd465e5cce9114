// The scheduler's allowedTopics (docs/processors.md): a request for a topic outside the list is refused with
// WEIR_ERR_INVALID_OPTIONS and dead-lettered under the error policy; requests for listed topics are delivered.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { dueDeliverySerde, scheduler, schedulerRequestSerde } from '../../processors/scheduler.ts'
import type { SchedulerRequest } from '../../processors/scheduler.ts'
import { defineTopology } from '../../topology/define.ts'
import type { StreamRecord } from '../../topology/record.ts'
import { createTestDriver } from '../../topology/test-driver.ts'

const START = 1_000_000

test('allowedTopics: a request for another topic is dead-lettered with WEIR_ERR_INVALID_OPTIONS and never delivered', async (t) => {
  const factory = scheduler({ allowedTopics: ['jobs', 'reminders'] })
  const topology = defineTopology({
    sources: { schedule: { topic: 'jobs.scheduler', keySerde: 'string', valueSerde: schedulerRequestSerde } },
    processors: { scheduler: { from: ['schedule'], timers: true, use: factory } },
    sinks: {
      deliveries: { from: ['scheduler'], topic: (record: StreamRecord) => (record.value as { topic: string }).topic, keySerde: 'buffer', valueSerde: dueDeliverySerde },
    },
  })
  const driver = await createTestDriver(topology, { startTime: START, errorPolicy: 'dead-letter' })
  t.after(() => driver.close())
  const schedule = (id: string, topic: string): SchedulerRequest => ({ op: 'schedule', id, deliverAt: START + 100, topic, value: Buffer.from(id) })
  for (const request of [schedule('ok-1', 'jobs'), schedule('bad-1', 'payments'), schedule('ok-2', 'reminders')]) {
    await driver.pipe('schedule', { key: request.id, value: request })
  }
  const dead = driver.take('jobs.scheduler.dlq')
  assert.deepEqual(
    dead.map((d) => [d.headers['weir.error.code'], d.key === undefined ? undefined : Buffer.from(d.key as Uint8Array).toString()]),
    [['WEIR_ERR_INVALID_OPTIONS', 'bad-1']],
  )
  assert.equal(factory.metrics.invalid, 1)
  assert.equal(factory.metrics.scheduled, 2)
  await driver.advanceTime(100)
  assert.deepEqual(
    driver.take('jobs').map((o) => Buffer.from(o.value as Uint8Array).toString()),
    ['ok-1'],
  )
  assert.deepEqual(
    driver.take('reminders').map((o) => Buffer.from(o.value as Uint8Array).toString()),
    ['ok-2'],
  )
  assert.deepEqual(driver.take('payments'), [])
})

test('allowedTopics must be an array', () => {
  assert.throws(
    () => scheduler({ allowedTopics: 'jobs' as unknown as string[] }),
    (e) => isWeirError(e, 'WEIR_ERR_INVALID_OPTIONS') && /allowedTopics must be an array/.test(e.message),
  )
})
