// Migration from the old design: moves envelopes from the Redis schedule (store.ts) into weir's scheduler by
// producing each as a schedule request (processors/scheduler.ts) to the scheduler topic.
//
// Order of events per batch: read (nothing changes in Redis) -> produce with the idempotent producer, acks=all
// -> remove from Redis only the envelopes that are unchanged since they were read. A crash anywhere leaves
// the envelope in Redis, so a re-run produces it again: the request carries the envelope's id, and the
// scheduler replaces a pending timer with the same id, so a re-import of an envelope that is not yet due is
// harmless. (An envelope that was already due when first imported may have fired in between; its re-import
// fires it again. Stop the pollers, import, and let consumers dedupe on `weir.scheduled.id`.)
//
// Undecodable members are moved aside to `<prefix>:dead` with the reason, never dropped.
import type { Redis } from 'ioredis'

import { invalidOptions } from '../../core/errors.ts'
import { createProducer } from '../../kafka/index.ts'
import type { KafkaConnection, OutgoingRecord } from '../../kafka/index.ts'
import { schedulerRequestSerde } from '../scheduler.ts'
import type { ScheduleRequest } from '../scheduler.ts'
import { connectRedis, createRedisScheduleStore, decodeRedisEnvelope, sha1 } from './store.ts'
import type { StoredEnvelope } from './store.ts'

export interface RedisImportOptions {
  /** TLS, SASL and compression of the Kafka producer (kafka/connection.ts). */
  connection?: KafkaConnection
  redis: string | Redis
  keyPrefix: string
  brokers: readonly string[]
  /** The scheduler's request topic (e.g. `<commands>.scheduler` of a command service). */
  topic: string
  /** Envelopes per batch (default 500). */
  batchSize?: number
  /** Also import envelopes a poller had claimed and not acknowledged (default true; stop the pollers first). */
  includeClaimed?: boolean
  /** Read and decode, report, change nothing (default false). */
  dryRun?: boolean
  clientId?: string
  onProgress?: (progress: RedisImportProgress) => void
}

export interface RedisImportProgress {
  /** Schedule requests produced and acknowledged. */
  imported: number
  /** Of those, removed from Redis (the rest changed meanwhile and are imported again in a later batch). */
  removed: number
  /** Members moved aside to `<prefix>:dead` (undecodable). */
  movedAside: number
  /** Members left in the due and claims sets. */
  remaining: number
  batches: number
}

/** The schedule request for an envelope: keyed by its id, so the request and any cancel share a partition. */
export function scheduleRequestRecord(topic: string, envelope: StoredEnvelope): OutgoingRecord {
  const request: ScheduleRequest = {
    op: 'schedule',
    id: envelope.id,
    deliverAt: envelope.deliverAt,
    topic: envelope.topic,
    key: envelope.key,
    value: envelope.value,
    headers: envelope.headers,
  }
  return { topic, key: envelope.id, value: schedulerRequestSerde.serialize(request) }
}

export async function importFromRedis(options: RedisImportOptions): Promise<RedisImportProgress> {
  const violations: string[] = []
  if (typeof options.keyPrefix !== 'string' || options.keyPrefix.length === 0) violations.push('keyPrefix must be a non-empty string')
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) violations.push('brokers must be a non-empty array')
  if (typeof options.topic !== 'string' || options.topic.length === 0) violations.push('topic must be a non-empty string')
  const batchSize = options.batchSize ?? 500
  if (!(Number.isInteger(batchSize) && batchSize > 0 && batchSize <= 10_000)) violations.push('batchSize must be an integer between 1 and 10000')
  if (violations.length > 0) throw invalidOptions('importFromRedis', violations)

  const { client, owned } = connectRedis(options.redis)
  const store = createRedisScheduleStore(client, options.keyPrefix)
  const producer = options.dryRun === true ? undefined : createProducer({ brokers: options.brokers, connection: options.connection, clientId: options.clientId ?? 'weir-redis-importer', idempotent: true })
  const progress: RedisImportProgress = { imported: 0, removed: 0, movedAside: 0, remaining: 0, batches: 0 }
  const report = async () => {
    const counts = await store.counts()
    progress.remaining = counts.due + counts.claims
    options.onProgress?.({ ...progress })
  }
  try {
    const sets: Array<'due' | 'claims'> = options.includeClaimed === false ? ['due'] : ['due', 'claims']
    for (const which of sets) {
      // A dry run changes nothing, so it reads one batch past another with an offset instead.
      let offset = 0
      for (;;) {
        const members = options.dryRun === true ? (await store.peek(which, offset + batchSize)).slice(offset) : await store.peek(which, batchSize)
        if (members.length === 0) break
        offset += members.length
        progress.batches++
        const valid: Array<{ member: (typeof members)[number]; envelope: StoredEnvelope }> = []
        const invalid: Array<{ id: string; reason: string }> = []
        for (const member of members) {
          const decoded = decodeRedisEnvelope(member.id, member.body)
          if (decoded.ok) valid.push({ member, envelope: decoded.envelope })
          else invalid.push({ id: member.id, reason: `undecodable: ${decoded.problem}` })
        }
        if (options.dryRun === true) {
          progress.imported += valid.length
          progress.movedAside += invalid.length
          await report()
          continue
        }
        await store.moveAside(invalid)
        progress.movedAside += invalid.length
        if (valid.length > 0) {
          await producer?.send(valid.map((v) => scheduleRequestRecord(options.topic, v.envelope)))
          progress.imported += valid.length
          const removed = await store.removeIfUnchanged(
            which,
            valid.map((v) => ({ id: v.member.id, score: v.member.score, bodySha1: sha1(v.member.body as Buffer) })),
          )
          progress.removed += removed
          // Everything in this batch changed while it was imported (someone keeps rescheduling): leave the
          // rest for a later run rather than loop; `remaining` tells.
          if (removed === 0 && invalid.length === 0) break
        }
        await report()
      }
    }
    await report()
    return { ...progress }
  } finally {
    await producer?.close().catch(() => {})
    if (owned) await client.quit().catch(() => {})
  }
}
