// The seeds' Redis poller as a bench process: `node bench/systems/redis-poller-main.ts` with the settings in
// the environment; prints "ready" once connected, runs until SIGTERM, then prints its stats as JSON.
import { startRedisPoller } from '../../processors/redis/poller.ts'

const poller = startRedisPoller({
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  keyPrefix: process.env.WEIR_BENCH_REDIS_PREFIX ?? 'bench',
  brokers: (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '127.0.0.1:9092').split(','),
  pollers: Number(process.env.WEIR_BENCH_POLLERS ?? 4),
  pollIntervalMs: Number(process.env.WEIR_BENCH_POLL_INTERVAL_MS ?? 10),
  batchSize: Number(process.env.WEIR_BENCH_BATCH_SIZE ?? 500),
  onError: (error) => process.stderr.write(`poller error: ${error instanceof Error ? error.message : String(error)}\n`),
})
await poller.ready
process.stdout.write('ready\n')
process.once('SIGTERM', () => {
  void poller.stop().then(() => {
    const { lateness: _samples, ...stats } = poller.stats()
    process.stdout.write(`${JSON.stringify(stats)}\n`)
    process.exit(0)
  })
})
