// Migration from the Redis schedule into weir's scheduler, on real Redis and the real broker: the scheduler
// topic receives one schedule request per envelope, Redis is emptied only after Kafka acknowledged, a re-import
// is harmless, and the scheduler topology (createStreamRuntime) delivers each envelope once (with the scheduler
// remembering delivered ids, also when already delivered envelopes are imported again).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import type { ConsumedRecord } from '../../../kafka/index.ts'
import { importFromRedis } from '../../../processors/redis/importer.ts'
import { createRedisScheduleStore, scheduleInRedis } from '../../../processors/redis/store.ts'
import { dueDeliverySerde, scheduler, schedulerRequestSerde } from '../../../processors/scheduler.ts'
import type { ScheduleRequest, SchedulerOptions } from '../../../processors/scheduler.ts'
import { defineTopology } from '../../../topology/define.ts'
import type { StreamRecord } from '../../../topology/record.ts'
import { brokers, closeAdmin, createTopics, readAll, uniqueName } from '../../helpers/kafka.ts'
import { firstSeen, watchTopic } from '../../helpers/visibility.ts'
import { waitFor } from '../../helpers/wait.ts'
import { startTestRuntime } from '../../helpers/runtime.ts'
import { envelopes, redisForTest, redisUrl } from './helpers.ts'

after(closeAdmin)

/** The scheduler topology on `requests` in a stream runtime (stopped and its state removed after the test). */
async function startScheduler(t: TestContext, requests: string, options: SchedulerOptions = {}) {
  const schedulerFactory = scheduler(options)
  const topology = defineTopology({
    sources: { schedule: { topic: requests, keySerde: 'string', valueSerde: schedulerRequestSerde } },
    processors: { scheduler: { from: ['schedule'], timers: true, use: schedulerFactory } },
    sinks: {
      deliveries: { from: ['scheduler'], topic: (record: StreamRecord) => (record.value as { topic: string }).topic, keySerde: 'buffer', valueSerde: dueDeliverySerde },
    },
  })
  const { runtime } = await startTestRuntime(t, { applicationId: uniqueName('import'), topology, stateDirPrefix: 'weir-import-' })
  return { schedulerFactory, runtime }
}

const cli = fileURLToPath(new URL('../../../processors/redis/cli.ts', import.meta.url))

test('import moves every envelope into the scheduler; Redis ends empty; re-import is harmless; each is delivered once', async (t) => {
  const [requests, output] = await createTopics(t, { prefix: 'imp-sched', partitions: 2 }, { prefix: 'imp-out', partitions: 2 })
  assert.ok(requests && output)
  const { redis, prefix } = await redisForTest(t)
  const now = Date.now()
  const past = envelopes(output, 10, (i) => now - 60_000 + i, 'past')
  const future = envelopes(output, 20, (i) => now + 6000 + i, 'future')
  await scheduleInRedis(redis, prefix, [...past, ...future])
  // A member a poller had claimed and never acknowledged is imported too.
  const store = createRedisScheduleStore(redis, prefix)
  assert.equal((await store.claim(now, 60_000, 2)).entries.length, 2)
  await redis.zadd(`${prefix}:due`, now, 'broken')
  await redis.hset(`${prefix}:body`, 'broken', 'not an envelope')

  const batches: number[] = []
  const result = await importFromRedis({ redis: redisUrl(), keyPrefix: prefix, brokers: brokers(), topic: requests, batchSize: 7, onProgress: (p) => batches.push(p.imported) })
  assert.equal(result.imported, 30)
  assert.equal(result.removed, 30)
  assert.equal(result.movedAside, 1)
  assert.equal(result.remaining, 0)
  assert.ok(batches.length >= 5, 'progress is reported per batch')
  assert.deepEqual(await store.counts(), { due: 0, claims: 0, dead: 1 })
  assert.equal(await redis.hlen(`${prefix}:body`), 0)
  assert.match((await redis.hget(`${prefix}:dead-why`, 'broken')) ?? '', /undecodable/)

  const produced = await readAll(requests)
  assert.equal(produced.length, 30)
  for (const record of produced) {
    const request = schedulerRequestSerde.deserialize(record.value) as ScheduleRequest
    assert.equal(record.key?.toString(), request.id, 'keyed by id, so a cancel reaches the same task')
    const original = [...past, ...future].find((e) => e.id === request.id)
    assert.ok(original)
    assert.equal(request.op, 'schedule')
    assert.equal(request.deliverAt, original.deliverAt)
    assert.equal(request.topic, output)
    assert.equal(Buffer.from(request.value as Uint8Array).toString(), original.value)
    assert.equal(Buffer.from(request.key as Uint8Array).toString(), original.key)
    assert.equal(Buffer.from(request.headers?.origin as Uint8Array).toString(), 'redis-test')
  }

  // Re-running on an empty schedule changes nothing (through the CLI, as an operator would).
  const rerun = spawnSync(process.execPath, [cli, '--redis', redisUrl(), '--key', prefix, '--brokers', brokers().join(','), '--topic', requests, '--json'], { encoding: 'utf8' })
  assert.equal(rerun.status, 0, rerun.stderr)
  assert.deepEqual(JSON.parse(rerun.stdout), { imported: 0, removed: 0, movedAside: 0, remaining: 0, batches: 0, dryRun: false })

  // A crash after the produce and before the removal leaves envelopes in Redis: re-importing them (the
  // not-yet-due ones here) only replaces the scheduler's pending timers.
  await scheduleInRedis(redis, prefix, future)
  assert.equal((await importFromRedis({ redis: redisUrl(), keyPrefix: prefix, brokers: brokers(), topic: requests })).imported, 20)
  assert.equal((await readAll(requests)).length, 50)

  // The test's own reader: when each delivery became visible, by this process's clock.
  const watch = await watchTopic(output)
  t.after(() => watch.stop())
  const { schedulerFactory, runtime } = await startScheduler(t, requests)
  let seen = ''
  await waitFor(
    async () => {
      const { scheduled, delivered, cancelled, invalid } = schedulerFactory.metrics
      const { timersPending } = await runtime.metrics()
      seen = JSON.stringify({ scheduled, delivered, cancelled, invalid, timersPending })
      // At least: the metrics count processing, which a transaction that aborted under load (and was redone)
      // counts twice; what was committed is checked exactly on the output topic below.
      return scheduled >= 50 && delivered >= 30 && timersPending === 0
    },
    // A bound, not a timing claim: a loaded 2-core machine took more than 30 s here.
    { what: 'every envelope delivered and no timer left', timeoutMs: 120_000 },
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; last seen ${seen}`, { cause: error })
  })
  // Stopped, the worker commits what it did and writes nothing more: reading to the end offsets now sees
  // every delivery it made, a duplicate too.
  await runtime.stop()
  const delivered = await readAll(output)
  const scheduledId = (r: ConsumedRecord) => r.headers.get('weir.scheduled.id')?.toString()
  const ids = delivered.map(scheduledId)
  assert.equal(ids.length, 30, 'each envelope delivered once')
  assert.deepEqual([...new Set(ids)].sort(), [...past, ...future].map((e) => e.id).sort())
  // Never early, by the reader's clock: no delivery was visible before its due time.
  await watch.until((seen) => seen.length >= 30, 'the watch read every delivery')
  const visible = firstSeen(watch.seen, scheduledId)
  const early = [...past, ...future].filter((e) => (visible.get(e.id) ?? Infinity) < e.deliverAt).map((e) => `${e.id} ${e.deliverAt - (visible.get(e.id) ?? 0)} ms early`)
  assert.deepEqual(early, [], 'none visible before its due time')
  const stampedEarly = delivered.filter((r) => Number(r.timestamp) < Number(r.headers.get('weir.scheduled.at')?.toString())).length
  t.diagnostic(`future envelopes visible ${future.map((e) => (visible.get(e.id) ?? 0) - e.deliverAt).join(', ')} ms after due; stamped before due by the worker: ${stampedEarly}`)
})

test('a dry run reads and counts, and changes nothing', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  await scheduleInRedis(redis, prefix, envelopes('anywhere', 12, (i) => Date.now() + i))
  const result = await importFromRedis({ redis: redisUrl(), keyPrefix: prefix, brokers: brokers(), topic: 'not-used', batchSize: 5, dryRun: true })
  assert.equal(result.imported, 12)
  assert.equal(result.batches, 3)
  assert.deepEqual(await createRedisScheduleStore(redis, prefix).counts(), { due: 12, claims: 0, dead: 0 })
})

test('the CLI rejects missing arguments with exit code 2 and usage', () => {
  const run = spawnSync(process.execPath, [cli, '--key', 'x'], { encoding: 'utf8', env: { ...process.env, KAFKA_BOOTSTRAP_SERVERS: '' } })
  assert.equal(run.status, 2)
  assert.match(run.stderr, /--topic is required/)
  assert.match(run.stderr, /--brokers/)
  assert.match(run.stderr, /Usage: weir import-redis/)
})

test('with rememberDeliveredMs, re-importing envelopes that were already delivered delivers nothing twice', async (t) => {
  const [requests, output] = await createTopics(t, { prefix: 'imp-again', partitions: 2 }, { prefix: 'imp-again-out', partitions: 2 })
  assert.ok(requests && output)
  const { redis, prefix } = await redisForTest(t)
  const due = envelopes(output, 12, (i) => Date.now() - 1000 + i, 'due')
  const { schedulerFactory, runtime } = await startScheduler(t, requests, { rememberDeliveredMs: 10 * 60_000 })
  await scheduleInRedis(redis, prefix, due)
  assert.equal((await importFromRedis({ redis: redisUrl(), keyPrefix: prefix, brokers: brokers(), topic: requests })).imported, 12)
  await waitFor(async () => ((await readAll(output)).length >= 12 ? true : undefined), { what: 'the first deliveries committed', timeoutMs: 30_000 })
  // The crash case: the envelopes are still in Redis after their delivery, and the importer runs again.
  await scheduleInRedis(redis, prefix, due)
  assert.equal((await importFromRedis({ redis: redisUrl(), keyPrefix: prefix, brokers: brokers(), topic: requests })).imported, 12)
  await waitFor(async () => schedulerFactory.metrics.duplicates === 12, { what: 'the re-imported requests dropped', timeoutMs: 30_000 })
  // Stopped, the worker commits what it did and writes nothing more: reading to the end offsets now sees a
  // second delivery however late it came.
  await runtime.stop()
  const delivered = (await readAll(output)).map((r) => r.headers.get('weir.scheduled.id')?.toString())
  assert.equal(delivered.length, 12, 'each envelope delivered once')
  assert.deepEqual([...new Set(delivered)].sort(), due.map((e) => e.id).sort())
  assert.equal(schedulerFactory.metrics.delivered, 12)
})
