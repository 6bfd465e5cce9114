// The seeds' delayed-execution design done well, as the benchmark baseline for weir's scheduler: envelopes in a
// Redis sorted set (store.ts), N pollers claiming due ones atomically with a lease, publishing them to Kafka
// with the idempotent producer, then acknowledging.
//
// Guarantee: at-least-once. An envelope is removed only after Kafka acknowledged it; a poller that dies (or
// fails to publish) between claim and acknowledgement leaves a claim whose lease expires, and any poller then
// claims it again. So an envelope is published twice when a poller dies after the publish but before the ack,
// or when a publish takes longer than the lease: consumers must dedupe (the `weir.scheduled.id` header).
// Under normal operation every envelope is published exactly once, never before its deliverAt (by the
// pollers' clocks), in no particular order across pollers.
import type { Redis } from 'ioredis'

import { invalidOptions, isWeirError } from '../../core/errors.ts'
import { createProducer } from '../../kafka/index.ts'
import type { KafkaConnection, KafkaProducer, OutgoingRecord } from '../../kafka/index.ts'
import { connectRedis, createRedisScheduleStore, decodeRedisEnvelope, redisError } from './store.ts'
import type { RedisScheduleStore, StoredEnvelope } from './store.ts'

// The benchmark loads the schedule and runs the pollers from this one module.
export { scheduleInRedis } from './store.ts'
export type { RedisEnvelope, ScheduleInRedisOptions } from './store.ts'

export interface RedisPollerOptions {
  /** A redis:// URL (each poller opens its own connection) or a client to share. */
  redis: string | Redis
  keyPrefix: string
  brokers: readonly string[]
  /** TLS, SASL and compression of the Kafka producers (kafka/connection.ts). */
  connection?: KafkaConnection
  /** Pollers running in parallel, each with its own Redis connection and producer (default 1). */
  pollers?: number
  /** Longest wait between polls when nothing is due, ms (default 100). */
  pollIntervalMs?: number
  /** Envelopes claimed per poll (default 100, at most 5000). */
  batchSize?: number
  /** How long a claim is held before another poller may take it, ms (default 30 s). */
  leaseMs?: number
  /** Publish attempts (one per lease) before an envelope is moved aside to `<prefix>:dead` (default 10). */
  maxAttempts?: number
  /** Lateness samples kept, a ring (default 100,000). */
  latenessSamples?: number
  clientId?: string
  now?: () => number
  /** Called with every error a poller survives (Redis or Kafka); the poller backs off and goes on. */
  onError?: (error: unknown) => void
}

export interface RedisPollerStats {
  /** Envelopes taken from the schedule (reclaims included). */
  claimed: number
  /** Claims taken over after their lease expired. */
  reclaimed: number
  /** Envelopes published and acknowledged. */
  delivered: number
  /** Envelopes moved aside (undecodable body, or publishing kept failing). */
  movedAside: number
  /** Errors survived (failed polls, publishes, acknowledgements). */
  errors: number
  /** Recent delivered-at minus deliverAt, ms (delivered-at: when Kafka acknowledged the publish). */
  lateness: number[]
}

export interface RedisPoller {
  /** Resolves once every poller is connected (Redis and Kafka). */
  readonly ready: Promise<void>
  stats(): RedisPollerStats
  /** Lets each poller finish its current batch (publish and ack), then closes every connection. */
  stop(): Promise<void>
}

interface ResolvedOptions {
  pollers: number
  pollIntervalMs: number
  batchSize: number
  leaseMs: number
  maxAttempts: number
  latenessSamples: number
  now: () => number
}

function resolveOptions(options: RedisPollerOptions): ResolvedOptions {
  const violations: string[] = []
  if (typeof options.redis !== 'string' && (typeof options.redis !== 'object' || options.redis === null)) violations.push('redis must be a URL or an ioredis client')
  if (typeof options.keyPrefix !== 'string' || options.keyPrefix.length === 0) violations.push('keyPrefix must be a non-empty string')
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) violations.push('brokers must be a non-empty array')
  const resolved: ResolvedOptions = {
    pollers: options.pollers ?? 1,
    pollIntervalMs: options.pollIntervalMs ?? 100,
    batchSize: options.batchSize ?? 100,
    leaseMs: options.leaseMs ?? 30_000,
    maxAttempts: options.maxAttempts ?? 10,
    latenessSamples: options.latenessSamples ?? 100_000,
    now: options.now ?? Date.now,
  }
  const positive = (name: keyof ResolvedOptions, max = Number.MAX_SAFE_INTEGER) => {
    const value = resolved[name]
    if (!(Number.isInteger(value) && (value as number) > 0 && (value as number) <= max)) violations.push(`${name} must be an integer between 1 and ${max}`)
  }
  positive('pollers', 1000)
  positive('pollIntervalMs')
  positive('batchSize', 5000)
  positive('leaseMs')
  positive('maxAttempts')
  positive('latenessSamples')
  if (violations.length > 0) throw invalidOptions('startRedisPoller', violations)
  return resolved
}

export function startRedisPoller(options: RedisPollerOptions): RedisPoller {
  const settings = resolveOptions(options)
  const counters = { claimed: 0, reclaimed: 0, delivered: 0, movedAside: 0, errors: 0 }
  const lateness = new Float64Array(settings.latenessSamples)
  let samples = 0
  let stopping = false
  const wakers = new Set<() => void>()

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping) return resolve()
      const wake = () => {
        clearTimeout(timer)
        wakers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      wakers.add(wake)
    })

  const reportError = (error: unknown) => {
    counters.errors++
    try {
      options.onError?.(error)
    } catch {
      // A throwing observer must not stop the poller.
    }
  }

  interface Worker {
    store: RedisScheduleStore
    producer: KafkaProducer
    ownedRedis: Redis | undefined
  }

  const workers: Worker[] = []
  for (let i = 0; i < settings.pollers; i++) {
    const { client, owned } = connectRedis(options.redis)
    workers.push({
      store: createRedisScheduleStore(client, options.keyPrefix),
      // A publish gives up within half the lease: past the lease another poller may claim the envelope and publish it,
      // and a send still retrying here would then publish it a second time.
      producer: createProducer({
        brokers: options.brokers,
        connection: options.connection,
        clientId: `${options.clientId ?? 'weir-redis-poller'}-${i}`,
        idempotent: true,
        deliveryTimeoutMs: Math.max(1, Math.floor(settings.leaseMs / 2)),
      }),
      ownedRedis: owned ? client : undefined,
    })
  }

  const ready = Promise.all(workers.map((w) => w.store.redis.ping())).then(
    () => undefined,
    (error: unknown) => {
      throw redisError(error, 'connect')
    },
  )

  const toRecord = (envelope: StoredEnvelope): OutgoingRecord => ({
    topic: envelope.topic,
    key: envelope.key,
    value: envelope.value,
    headers: { ...envelope.headers, 'weir.scheduled.id': envelope.id, 'weir.scheduled.at': String(envelope.deliverAt) },
    timestamp: BigInt(settings.now()),
  })

  const recordDelivered = (envelopes: readonly StoredEnvelope[]) => {
    const at = settings.now()
    counters.delivered += envelopes.length
    for (const envelope of envelopes) {
      lateness[samples % lateness.length] = at - envelope.deliverAt
      samples++
    }
  }

  // Publishes one claimed batch. When the batch fails, each envelope is tried alone so that one bad record
  // (say, a topic that does not exist) does not hold back the others; what still fails keeps its claim
  // and is retried when the lease expires, until maxAttempts moves it aside.
  async function publish(worker: Worker, batch: ReadonlyArray<{ envelope: StoredEnvelope; attempts: number }>): Promise<void> {
    try {
      await worker.producer.send(batch.map((b) => toRecord(b.envelope)))
      recordDelivered(batch.map((b) => b.envelope))
      await worker.store.ack(batch.map((b) => b.envelope.id))
      return
    } catch (error) {
      reportError(error)
      if (isWeirError(error, 'WEIR_ERR_REDIS')) return
      if (batch.length === 1) {
        await giveUpOrRetryLater(worker, [{ ...(batch[0] as { envelope: StoredEnvelope; attempts: number }), error }])
        return
      }
    }
    const outcomes = await Promise.allSettled(batch.map(async (b) => worker.producer.send([toRecord(b.envelope)])))
    const published: StoredEnvelope[] = []
    const failed: Array<{ envelope: StoredEnvelope; attempts: number; error: unknown }> = []
    outcomes.forEach((outcome, i) => {
      const entry = batch[i] as { envelope: StoredEnvelope; attempts: number }
      if (outcome.status === 'fulfilled') published.push(entry.envelope)
      else failed.push({ ...entry, error: outcome.reason })
    })
    recordDelivered(published)
    await worker.store.ack(published.map((e) => e.id))
    await giveUpOrRetryLater(worker, failed)
  }

  // Failed envelopes keep their claim (retried when the lease expires) until maxAttempts moves them aside.
  async function giveUpOrRetryLater(worker: Worker, failed: ReadonlyArray<{ envelope: StoredEnvelope; attempts: number; error: unknown }>): Promise<void> {
    const giveUp = failed
      .filter((f) => f.attempts >= settings.maxAttempts)
      .map((f) => ({ id: f.envelope.id, reason: `publish failed ${f.attempts} time(s): ${f.error instanceof Error ? f.error.message : String(f.error)}` }))
    await worker.store.moveAside(giveUp)
    counters.movedAside += giveUp.length
  }

  async function pollOnce(worker: Worker): Promise<{ claimed: number; next: number | undefined }> {
    const claimed = await worker.store.claim(settings.now(), settings.leaseMs, settings.batchSize)
    counters.claimed += claimed.entries.length
    counters.reclaimed += claimed.reclaimed
    const batch: Array<{ envelope: StoredEnvelope; attempts: number }> = []
    const invalid: Array<{ id: string; reason: string }> = []
    for (const entry of claimed.entries) {
      const decoded = decodeRedisEnvelope(entry.id, entry.body)
      if (decoded.ok) batch.push({ envelope: decoded.envelope, attempts: entry.attempts })
      else invalid.push({ id: entry.id, reason: `undecodable: ${decoded.problem}` })
    }
    if (invalid.length > 0) {
      // Nothing is dropped: the raw body and the reason stay in <prefix>:dead / :dead-why.
      await worker.store.moveAside(invalid)
      counters.movedAside += invalid.length
    }
    if (batch.length > 0) await publish(worker, batch)
    return { claimed: claimed.entries.length, next: claimed.next }
  }

  async function loop(worker: Worker): Promise<void> {
    while (!stopping) {
      try {
        const { claimed, next } = await pollOnce(worker)
        if (claimed >= settings.batchSize) continue
        // Sleep until the next due time when it comes before the poll interval ends.
        const untilNext = next === undefined ? settings.pollIntervalMs : Math.max(1, Math.ceil(next - settings.now()))
        await sleep(Math.min(settings.pollIntervalMs, untilNext))
      } catch (error) {
        reportError(error)
        await sleep(settings.pollIntervalMs)
      }
    }
  }

  const loops = ready.then(
    () => Promise.all(workers.map((worker) => loop(worker))),
    (error: unknown) => {
      reportError(error)
    },
  )

  return {
    ready,
    stats() {
      const kept = Math.min(samples, lateness.length)
      const start = samples > lateness.length ? samples % lateness.length : 0
      const ordered: number[] = new Array<number>(kept)
      for (let i = 0; i < kept; i++) ordered[i] = lateness[(start + i) % lateness.length] as number
      return { ...counters, lateness: ordered }
    },
    async stop() {
      stopping = true
      for (const wake of [...wakers]) wake()
      await loops
      await Promise.all(
        workers.map(async (worker) => {
          await worker.producer.close().catch(() => {})
          await worker.ownedRedis?.quit().catch(() => {})
        }),
      )
    },
  }
}
