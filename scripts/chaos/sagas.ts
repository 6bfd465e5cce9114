// The saga part of `npm run chaos`: the topics and workers of the chaos saga (test/fixtures/chaos-saga.ts: one
// participant command service and the saga itself, two workers of it so a kill moves partitions between them),
// the feed of saga starts, and the tracker that judges the saga events (test/helpers/saga-chaos-check.ts).
// scripts/chaos.ts wires it in: topics, tail, workers (killed in turn with the others), feed, absorb, report.
import { resolve } from 'node:path'

import { encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { KafkaProducer } from '../../kafka/index.ts'
import { CHAOS_SAGA_START_ALIAS, chaosSagaExpectation, chaosSagaParticipant, chaosSagaTopics } from '../../test/fixtures/chaos-saga.ts'
import type { ChaosSagaData } from '../../test/fixtures/chaos-saga.ts'
import { SagaChaosTracker } from '../../test/helpers/saga-chaos-check.ts'

export interface SagaChaosWorkerSpec {
  name: string
  module: string
  applicationId: string
  env: Record<string, string>
}

export interface SagaChaos {
  /** Topics to create (every one with the run's partition count). */
  readonly topics: readonly string[]
  /** The topic the run's reader must tail. */
  readonly events: string
  readonly workers: readonly SagaChaosWorkerSpec[]
  readonly tracker: SagaChaosTracker
  /** Starts `count` sagas spread over `seconds`; stops early when `halted`. */
  feed(producer: KafkaProducer, seconds: number, halted: { value: boolean }): Promise<void>
}

/** Sagas by i % 6: 0-2 complete (1 with a flaky first attempt per step), 3-5 fail at step a, b, c (4 flaky too). */
function sagaData(i: number): ChaosSagaData {
  const kind = i % 6
  return { sagaId: `saga-${i}`, failAt: kind < 3 ? -1 : kind - 3, flaky: kind === 1 || kind === 4 }
}

export function sagaChaos(options: { root: string; prefix: string; applicationId: string; count: number }): SagaChaos {
  const { prefix, count } = options
  const t = chaosSagaTopics(prefix)
  const participant = chaosSagaParticipant(prefix).topics
  const module = resolve(options.root, 'test/fixtures/chaos-saga.ts')
  const env = (role: string) => ({ WEIR_CHAOS_SAGA_PREFIX: prefix, WEIR_CHAOS_SAGA_ROLE: role })
  const tracker = new SagaChaosTracker()
  return {
    topics: [t.starts, t.inbox, t.events, participant.commands, participant.deadlines, participant.scheduler, participant.outcomes, participant.lateResults, participant.events],
    events: t.events,
    workers: [
      // In this order the kills reach them in turn (scripts/chaos.ts): a saga worker first, while sagas are in flight.
      { name: 'sg0', module, applicationId: `${options.applicationId}-saga`, env: env('saga') },
      { name: 'sp0', module, applicationId: `${options.applicationId}-saga-participant`, env: env('participant') },
      { name: 'sg1', module, applicationId: `${options.applicationId}-saga`, env: env('saga') },
    ],
    tracker,
    async feed(producer, seconds, halted) {
      const rounds = Math.max(1, Math.ceil((seconds * 1000) / 200))
      let sent = 0
      for (let round = 1; round <= rounds && !halted.value; round++) {
        const batch = []
        for (; sent < Math.round((count * round) / rounds); sent++) {
          const data = sagaData(sent)
          tracker.fed({ sagaId: data.sagaId, ...chaosSagaExpectation(data) })
          const start = createEnvelope({ kind: 'event', contextPath: 'chaos', alias: CHAOS_SAGA_START_ALIAS, payload: data })
          batch.push({ topic: t.starts, key: data.sagaId, value: encodeEnvelope(start) })
        }
        if (batch.length > 0) await producer.send(batch)
        await new Promise((r) => setTimeout(r, 200))
      }
    },
  }
}
