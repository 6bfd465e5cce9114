// What weir's scheduler and the Kafka Streams baseline share as bench systems: the same schedule-request bytes
// (schedulerRequestSerde) produced to a topic, and "ingested" = the consumer group committed all of them.
import { createProducer } from '../../kafka/index.ts'
import type { KafkaAdmin, OutgoingRecord } from '../../kafka/index.ts'
import { schedulerRequestSerde } from '../../processors/scheduler.ts'
import type { DelayedEnvelope } from '../delayed.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

export async function produceScheduleRequests(brokers: readonly string[], topic: string, envelopes: readonly DelayedEnvelope[]): Promise<void> {
  const producer = createProducer({ ...kafkaSecurity(), brokers: [...brokers], clientId: 'bench-schedule-load' })
  try {
    for (let i = 0; i < envelopes.length; i += 5000) {
      const batch: OutgoingRecord[] = envelopes.slice(i, i + 5000).map((e) => ({
        topic,
        key: e.id,
        value: schedulerRequestSerde.serialize({ op: 'schedule', id: e.id, deliverAt: e.deliverAt, topic: e.topic, value: e.value }) as Buffer,
      }))
      await producer.send(batch)
    }
  } finally {
    await producer.close()
  }
}

/** Resolves once `groupId` committed `count` records of `topic`; `failure()` names a reason to give up (a dead process). */
export async function waitCommitted(admin: KafkaAdmin, groupId: string, topic: string, count: number, failure: () => string | undefined): Promise<void> {
  for (;;) {
    const committed = await admin.committedOffsets(groupId, topic)
    if (committed.reduce((sum, p) => sum + (p.offset > 0n ? Number(p.offset) : 0), 0) >= count) return
    const problem = failure()
    if (problem !== undefined) throw new Error(problem)
    await new Promise((r) => setTimeout(r, 100))
  }
}
