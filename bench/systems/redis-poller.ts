// The old design as a bench system (processors/redis/poller.ts): envelopes in a Redis sorted set, several
// pollers claiming due ones atomically (Lua) and publishing them with the idempotent producer; at-least-once.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'

import { scheduleInRedis } from '../../processors/redis/poller.ts'
import { connectRedis, redisKeys } from '../../processors/redis/store.ts'
import type { DelayedEnvelope, DelayedRunContext, DelayedSystem } from '../delayed.ts'

const MAIN = resolve(import.meta.dirname, 'redis-poller-main.ts')

export function redisPoller(options: { redisUrl: string; pollers?: number; pollIntervalMs?: number; batchSize?: number }): DelayedSystem {
  let child: ChildProcess | undefined
  let prefix = ''
  let log = ''
  return {
    name: 'redisPoller',
    async start(context: DelayedRunContext) {
      prefix = `weir-bench:${context.runId}`
      child = spawn(process.execPath, [MAIN], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          REDIS_URL: options.redisUrl,
          KAFKA_BOOTSTRAP_SERVERS: context.brokers.join(','),
          WEIR_BENCH_REDIS_PREFIX: prefix,
          WEIR_BENCH_POLLERS: String(options.pollers ?? 4),
          WEIR_BENCH_POLL_INTERVAL_MS: String(options.pollIntervalMs ?? 10),
          WEIR_BENCH_BATCH_SIZE: String(options.batchSize ?? 500),
        },
      })
      const started = child
      await new Promise<void>((resolveReady, reject) => {
        const onData = (chunk: Buffer) => {
          log = (log + chunk.toString()).slice(-10_000)
          if (log.includes('ready\n')) resolveReady()
        }
        started.stdout?.on('data', onData)
        started.stderr?.on('data', onData)
        started.once('exit', (code) => reject(new Error(`the Redis poller exited (${code}):\n${log}`)))
      })
    },
    async load(envelopes: readonly DelayedEnvelope[]) {
      await scheduleInRedis(
        options.redisUrl,
        prefix,
        envelopes.map((e) => ({ id: e.id, topic: e.topic, value: e.value, deliverAt: e.deliverAt })),
      )
    },
    async ingested() {
      // Loaded straight into Redis: nothing to wait for.
    },
    async stop() {
      const current = child
      child = undefined
      if (current === undefined || current.exitCode !== null) return
      const exited = new Promise((r) => current.once('exit', r))
      current.kill('SIGTERM')
      await exited
      // Leave nothing behind in the shared Redis.
      const { client } = connectRedis(options.redisUrl)
      try {
        await client.del(...Object.values(redisKeys(prefix)))
      } finally {
        client.disconnect()
      }
    },
  }
}
