// What the chaos run feeds, paced by the clock: the topology's input records, and the command service's
// commands (with their deadline registrations) and delayed envelopes.
import { encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import type { KafkaProducer, OutgoingRecord } from '../../kafka/index.ts'
import type { CommandServiceTopics } from '../../processors/command-service.ts'
import { schedulerRequestSerde } from '../../processors/scheduler.ts'
import { chaosCommand, chaosRequestPlan } from '../../test/fixtures/chaos-command-service.ts'
import type { ChaosWork } from '../../test/fixtures/chaos-command-service.ts'
import type { ChaosRequest } from '../../test/helpers/chaos-check.ts'
import { planWithFaults } from './faults.ts'
import type { ChaosFaults } from './faults.ts'
import { random, sleep } from './options.ts'

/** Set when the run ends (or fails): the feeds stop before the topics go. */
export interface Halted {
  value: boolean
}

/**
 * While set, the feeds go on at their pace past what they planned to send (they end once released and done), so
 * commits go on through every broker kill however long the cluster takes to recover between kills, and each
 * recovery can be seen. What they sent is what the verdict expects.
 */
export interface Held {
  value: boolean
}

/**
 * Feeds `records` input records (more while held) over `seconds` by the clock: each send carries what is due by
 * now, so slow sends (acks from three brokers on a loaded machine) do not stretch the feed beyond its time.
 * `fed()` counts them.
 */
export function feedRecords(producer: KafkaProducer, input: string, records: number, seconds: number, halted: Halted, held: Held): { done: Promise<void>; fed(): number } {
  let seq = 0
  const perMs = records / (seconds * 1000)
  const done = (async () => {
    const feedStart = performance.now()
    while ((seq < records || held.value) && !halted.value) {
      const due = Math.ceil(perMs * (performance.now() - feedStart))
      const n = Math.min(due - seq, held.value ? Number.POSITIVE_INFINITY : records - seq, 1000)
      if (n > 0) await producer.send(Array.from({ length: n }, () => ({ topic: input, key: `key-${seq % 101}`, value: JSON.stringify({ seq: seq++ }) })))
      await sleep(50)
    }
  })()
  return { done, fed: () => seq }
}

/**
 * The TTL of the commands that must not time out: far beyond any stall a run can have (a partition waits for
 * a killed worker's session to time out, then for its state to be restored, on a loaded machine).
 */
const HAS_TIME_TTL_MS = 120_000

export interface CommandServiceFeed {
  producer: KafkaProducer
  topics: CommandServiceTopics
  /** The topic the delayed envelopes are delivered to. */
  delivered: string
  seconds: number
  requests: number
  envelopes: number
  /** Filled as they are sent: each request with the outcome it must end as, each envelope's id. */
  sent: ChaosRequest[]
  envelopeIds: string[]
  halted: Halted
  /** Injected faults (`--faults`): they change the outcome some requests must end as. */
  faults?: ChaosFaults | undefined
  held: Held
}

/**
 * Feeds the command service for `seconds`: commands with a deadline (and their registration on the
 * deadlines topic, as the gateway does) and delayed envelopes for the scheduler. Commands, by i % 5:
 * 0-2 race their deadline (20-300 ms TTL, 0-40 ms of work: ok or timeout), 3 have time (HAS_TIME_TTL_MS: ok),
 * 4 have time too and are flagged for out-of-order retries; they fail 0-4 times (4 exhausts the 4
 * deliveries: an error outcome; fewer: ok). Each request is recorded with the outcome it must end as.
 */
export async function feedCommandService(feed: CommandServiceFeed): Promise<void> {
  const { producer, topics: cs, delivered, seconds, requests, envelopes, sent, envelopeIds, halted, held } = feed
  const rounds = Math.max(1, Math.ceil((seconds * 1000) / 50))
  let sentRequests = 0
  let sentEnvelopes = 0
  const feedStart = performance.now()
  // By the clock, as the records' feed: a round that ran late is caught up in the next send; while held, the
  // rounds go on past the planned ones at the same pace.
  const clock = () => Math.floor((performance.now() - feedStart) / 50)
  for (let round = 1; round <= rounds || held.value; round = Math.max(round + 1, held.value ? clock() : Math.min(rounds, clock()))) {
    const batch: OutgoingRecord[] = []
    for (; sentRequests < Math.round((requests * round) / rounds); sentRequests++) {
      const i = sentRequests
      const race = i % 5 < 3
      const outOfOrder = i % 5 === 4
      const work: ChaosWork = { workMs: race ? random(0, 40) : random(0, 5), failures: outOfOrder ? random(0, 5) : 0 }
      const command: Envelope<ChaosWork> = createEnvelope({
        kind: 'command',
        ...chaosCommand,
        payload: work,
        ttlMs: race ? random(20, 300) : HAS_TIME_TTL_MS,
        ...(outOfOrder ? { retry: { outOfOrder: true, count: 0 } } : {}),
      })
      sent.push(planWithFaults(feed.faults, { requestId: command.requestId, commandId: command.id, ...chaosRequestPlan(work, race) }, work, outOfOrder))
      batch.push({ topic: cs.commands, key: command.requestId, value: encodeEnvelope(command) })
      batch.push({ topic: cs.deadlines, key: command.requestId, value: encodeEnvelope(command) })
    }
    for (; sentEnvelopes < Math.round((envelopes * round) / rounds); sentEnvelopes++) {
      const id = `envelope-${sentEnvelopes}`
      const deliverAt = Date.now() + random(300, 8000)
      const value = Buffer.from(JSON.stringify({ id, deliverAt }))
      const request = schedulerRequestSerde.serialize({ op: 'schedule', id, deliverAt, topic: delivered, key: Buffer.from(id), value })
      envelopeIds.push(id)
      batch.push({ topic: cs.scheduler, key: id, value: request })
    }
    if (halted.value) return
    if (batch.length > 0) await producer.send(batch)
    await sleep(50)
  }
}
