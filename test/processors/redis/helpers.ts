// Redis for the poller and importer tests: the shared server (REDIS_URL), a unique key prefix per test,
// its keys deleted after the test.
import { randomBytes } from 'node:crypto'
import type { TestContext } from 'node:test'

import { Redis } from 'ioredis'

import { redisKeys } from '../../../processors/redis/store.ts'
import type { RedisEnvelope } from '../../../processors/redis/store.ts'

export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
}

export async function redisForTest(t: TestContext): Promise<{ redis: Redis; prefix: string }> {
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: 3 })
  const prefix = `weir-test:${process.pid}:${randomBytes(4).toString('hex')}`
  t.after(async () => {
    await redis.del(...Object.values(redisKeys(prefix)))
    await redis.quit()
  })
  return { redis, prefix }
}

export function envelopes(topic: string, count: number, deliverAt: (i: number) => number, idPrefix = 'e'): RedisEnvelope[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${idPrefix}-${i}`,
    topic,
    key: `k${i % 7}`,
    value: `value-${i}`,
    headers: { origin: 'redis-test' },
    deliverAt: deliverAt(i),
  }))
}
