// The Redis poller baseline on real Redis and the real broker: exactly one publish per envelope in normal
// operation, never early, no double publish across pollers, lease expiry retries a dead poller's claims,
// undecodable members moved aside.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import { startRedisPoller } from '../../../processors/redis/poller.ts'
import type { RedisPoller, RedisPollerOptions } from '../../../processors/redis/poller.ts'
import { createRedisScheduleStore, scheduleInRedis } from '../../../processors/redis/store.ts'
import { brokers, closeAdmin, createTopics, readAll } from '../../helpers/kafka.ts'
import type { ConsumedRecord } from '../../../kafka/index.ts'
import { firstSeen, watchTopic } from '../../helpers/visibility.ts'
import { waitFor } from '../../helpers/wait.ts'
import { envelopes, redisForTest, redisUrl } from './helpers.ts'

after(closeAdmin)

function start(t: TestContext, options: Omit<RedisPollerOptions, 'brokers' | 'redis'>): RedisPoller {
  const errors: unknown[] = []
  const poller = startRedisPoller({ redis: redisUrl(), brokers: brokers(), onError: (e) => errors.push(e), ...options })
  t.after(() => poller.stop())
  return poller
}

const header = (record: ConsumedRecord, name: string) => record.headers.get(name)?.toString()

function assertEachOnce(records: readonly ConsumedRecord[], ids: readonly string[]) {
  const seen = records.map((r) => header(r, 'weir.scheduled.id'))
  assert.equal(new Set(seen).size, seen.length, 'no envelope published twice')
  assert.deepEqual([...seen].sort(), [...ids].sort())
}

test('every due envelope is published once, with its key, value and headers, never before its time', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'poll-out', partitions: 2 })
  assert.ok(topic)
  const { redis, prefix } = await redisForTest(t)
  const now = Date.now()
  const due = envelopes(topic, 50, (i) => now - 1000 + i, 'due')
  const later = envelopes(topic, 50, (i) => now + 1500 + i * 10, 'later')
  assert.equal(await scheduleInRedis(redis, prefix, [...due, ...later], { chunkSize: 30 }), 100)
  // The test's own reader: when each publish became visible, by this process's clock.
  const watch = await watchTopic(topic)
  t.after(() => watch.stop())
  const poller = start(t, { keyPrefix: prefix, pollers: 2, pollIntervalMs: 50, batchSize: 20 })
  await poller.ready
  await waitFor(() => poller.stats().delivered >= 50, { what: 'the due envelopes', timeoutMs: 15_000 })
  await waitFor(() => poller.stats().delivered === 100, { what: 'every envelope', timeoutMs: 15_000 })
  await poller.stop()
  const records = await readAll(topic)
  assertEachOnce(records, [...due, ...later].map((e) => e.id))
  await watch.until((seen) => seen.length >= 100, 'the watch read every publish')
  const visible = firstSeen(watch.seen, (r) => header(r, 'weir.scheduled.id'))
  for (const record of records) {
    const deliverAt = Number(header(record, 'weir.scheduled.at'))
    const id = header(record, 'weir.scheduled.id') ?? '?'
    assert.ok((visible.get(id) ?? 0) >= deliverAt, `${id} visible at ${visible.get(id)}, due ${deliverAt}`)
    const i = Number(header(record, 'weir.scheduled.id')?.split('-')[1])
    assert.equal(record.key?.toString(), `k${i % 7}`)
    assert.equal(record.value?.toString(), `value-${i}`)
    assert.equal(header(record, 'origin'), 'redis-test')
  }
  const stats = poller.stats()
  assert.equal(stats.lateness.length, 100)
  assert.ok(stats.lateness.every((ms) => ms >= 0), 'lateness is never negative')
  assert.equal(stats.reclaimed, 0)
  assert.deepEqual(await createRedisScheduleStore(redis, prefix).counts(), { due: 0, claims: 0, dead: 0 })
  assert.equal(await redis.hlen(`${prefix}:body`), 0, 'bodies are deleted on acknowledgement')
})

test('several pollers claiming small batches never publish a claimed envelope twice', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'poll-many', partitions: 3 })
  assert.ok(topic)
  const { redis, prefix } = await redisForTest(t)
  const all = envelopes(topic, 1500, (i) => Date.now() - 5000 + i)
  await scheduleInRedis(redis, prefix, all)
  const poller = start(t, { keyPrefix: prefix, pollers: 4, pollIntervalMs: 20, batchSize: 7 })
  await waitFor(() => poller.stats().delivered === all.length, { what: 'every envelope', timeoutMs: 30_000 })
  const stats = poller.stats()
  assert.equal(stats.claimed, all.length, 'each envelope claimed by exactly one poller')
  assert.equal(stats.errors, 0)
  assertEachOnce(await readAll(topic), all.map((e) => e.id))
})

test("a poller that dies between claim and publish: its claims are published by another after the lease", async (t) => {
  const [topic] = await createTopics(t, { prefix: 'poll-lease', partitions: 1 })
  assert.ok(topic)
  const { redis, prefix } = await redisForTest(t)
  const all = envelopes(topic, 5, () => Date.now() - 100)
  await scheduleInRedis(redis, prefix, all)
  // The dying poller: claims everything with a 1.5 s lease, then never publishes nor acknowledges.
  const claimedAt = Date.now()
  const dead = await createRedisScheduleStore(redis, prefix).claim(claimedAt, 1500, 100)
  assert.equal(dead.entries.length, 5)
  const watch = await watchTopic(topic)
  t.after(() => watch.stop())
  const poller = start(t, { keyPrefix: prefix, pollIntervalMs: 50, leaseMs: 1500 })
  await waitFor(() => poller.stats().delivered === 5, { what: 'the reclaimed envelopes', timeoutMs: 15_000 })
  assert.equal(poller.stats().reclaimed, 5)
  // Stopped, the poller publishes nothing more: reading to the end offsets sees a second publish too.
  await poller.stop()
  const records = await readAll(topic)
  assertEachOnce(records, all.map((e) => e.id))
  // Not taken over early, by the reader's clock: nothing was visible before the lease expired.
  await watch.until((seen) => seen.length >= 5, 'the watch read every publish')
  for (const { seenAt } of watch.seen) assert.ok(seenAt >= claimedAt + 1500, `visible ${claimedAt + 1500 - seenAt} ms before the lease expired`)
  assert.deepEqual(await createRedisScheduleStore(redis, prefix).counts(), { due: 0, claims: 0, dead: 0 })
  assert.equal(await redis.hlen(`${prefix}:attempts`), 0, 'attempt counters are cleaned up')
})

test('undecodable members are moved aside with their raw bytes and a reason, the rest is published', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'poll-bad', partitions: 1 })
  assert.ok(topic)
  const { redis, prefix } = await redisForTest(t)
  const good = envelopes(topic, 3, () => Date.now() - 10)
  await scheduleInRedis(redis, prefix, good)
  const garbage = Buffer.from([0xc1, 0x00, 0xff])
  await redis.zadd(`${prefix}:due`, Date.now() - 10, 'garbage', Date.now() - 10, 'orphan', Date.now() - 10, 'no-topic')
  await redis.hset(`${prefix}:body`, 'garbage', garbage, 'no-topic', JSON.stringify({ value: 'x', deliverAt: 1 }))
  const poller = start(t, { keyPrefix: prefix, pollIntervalMs: 50 })
  await waitFor(() => poller.stats().delivered === 3 && poller.stats().movedAside === 3, { what: 'publish and move aside', timeoutMs: 15_000 })
  assertEachOnce(await readAll(topic), good.map((e) => e.id))
  assert.deepEqual(await redis.hgetBuffer(`${prefix}:dead`, 'garbage'), garbage)
  assert.equal(await redis.hget(`${prefix}:dead`, 'orphan'), '')
  assert.match((await redis.hget(`${prefix}:dead-why`, 'orphan')) ?? '', /no body/)
  assert.match((await redis.hget(`${prefix}:dead-why`, 'no-topic')) ?? '', /topic must be a non-empty string/)
  assert.deepEqual(await createRedisScheduleStore(redis, prefix).counts(), { due: 0, claims: 0, dead: 3 })
})

test('options are validated all at once', () => {
  assert.throws(
    () => startRedisPoller({ redis: redisUrl(), keyPrefix: '', brokers: [], pollers: 0, batchSize: 10_000 }),
    (error: Error & { code?: string; details?: { violations?: string[] } }) => error.code === 'WEIR_ERR_INVALID_OPTIONS' && error.details?.violations?.length === 4,
  )
})

test('an envelope that cannot be published is retried once per lease, then moved aside with the reason', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const missing = `weir-test-missing-${Date.now()}`
  await scheduleInRedis(redis, prefix, envelopes(missing, 1, () => Date.now() - 10))
  const poller = start(t, { keyPrefix: prefix, pollIntervalMs: 50, leaseMs: 300, maxAttempts: 2 })
  await waitFor(() => poller.stats().movedAside === 1, { what: 'the envelope moved aside', timeoutMs: 50_000 })
  const stats = poller.stats()
  assert.equal(stats.delivered, 0)
  assert.equal(stats.reclaimed, 1, 'a second attempt after the lease')
  assert.ok(stats.errors >= 2)
  assert.match((await redis.hget(`${prefix}:dead-why`, 'e-0')) ?? '', /publish failed 2 time\(s\): .*Unknown topic/i)
  assert.ok(((await redis.hgetBuffer(`${prefix}:dead`, 'e-0')) ?? Buffer.alloc(0)).length > 0, 'the body is kept')
  assert.deepEqual(await createRedisScheduleStore(redis, prefix).counts(), { due: 0, claims: 0, dead: 1 })
})
