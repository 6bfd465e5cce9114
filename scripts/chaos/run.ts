// One chaos run on infrastructure already provided: topics, the read_committed tail, the workers, the feeds,
// the worker kills, then the broker kills (a cluster), the collection; everything it started is stopped
// however it ends.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { createAdmin, createClusterView, createProducer } from '../../kafka/index.ts'
import type { ClusterView } from '../../kafka/index.ts'
import { chaosCommandService, deliveredTopic } from '../../test/fixtures/chaos-command-service.ts'
import { chaosRunReport, commandServiceChaosTopicList } from '../../test/helpers/chaos-check.ts'
import type { ChaosRequest, ChaosRunReport, CommandServiceChaosTopics } from '../../test/helpers/chaos-check.ts'
import type { SagaChaosReport } from '../../test/helpers/saga-chaos-check.ts'
import { closeAdmin } from '../../test/helpers/kafka.ts'
import { tailTopics } from '../../test/helpers/tail.ts'
import type { Infrastructure, Progress } from '../infra/index.ts'
import { SECONDS_PER_BROKER_KILL, brokerSchedule, killBrokers } from './broker-kills.ts'
import type { BrokerKillFacts } from './broker-kills.ts'
import { collect } from './collect.ts'
import { feedCommandService, feedRecords } from './feed.ts'
import type { Halted } from './feed.ts'
import { startFleet } from './fleet.ts'
import type { Fleet, WorkerKills } from './fleet.ts'
import type { ChaosOptions } from './options.ts'
import { sagaChaos } from './sagas.ts'
import { armChaosFaults, chaosFaultFacts } from './faults.ts'

export async function run(infra: Infrastructure, options: ChaosOptions, progress: Progress): Promise<ChaosRunReport & SagaChaosReport> {
  const { records, workers: workerCount, kills, partitions, rate, requests, envelopes, 'cs-workers': csWorkerCount, brokers: brokerCount, brokerKills: brokerKillsRequested } = options
  process.env.KAFKA_BOOTSTRAP_SERVERS = infra.env.KAFKA_BOOTSTRAP_SERVERS
  const brokers = infra.kafka.brokers
  const schedule = brokerSchedule(brokerKillsRequested, brokerCount)
  // Records, requests and envelopes keep flowing through the broker kills (a commit is seen by its outputs):
  // the feed lasts the worker kills' time plus the broker kills'.
  const workerSeconds = records / rate
  const feedSeconds = workerSeconds + (schedule.length === 0 ? 0 : 20 + schedule.length * SECONDS_PER_BROKER_KILL)
  const started = performance.now()
  const runId = `${Date.now()}`
  const input = `chaos-${runId}.input`
  const output = `chaos-${runId}.output`
  const applicationId = `weir-chaos-${runId}`
  const base = await mkdtemp(join(tmpdir(), 'weir-chaos-'))
  const keep = options.keepTopics
  const csPrefix = `chaos-${runId}-cs`
  const cs = chaosCommandService({ prefix: csPrefix }).topics
  const delivered = deliveredTopic(csPrefix)
  const deadLetters = `${cs.commands}.dlq`
  const csTopicNames = [cs.commands, cs.deadlines, cs.scheduler, cs.outcomes, cs.lateResults, cs.events, deadLetters, delivered]
  const csTopics: CommandServiceChaosTopics = { commands: cs.commands, scheduler: cs.scheduler, outcomes: cs.outcomes, lateResults: cs.lateResults, deadLetters, deliveries: [delivered] }
  const sagas = sagaChaos({ root: resolve(import.meta.dirname, '../..'), prefix: `chaos-${runId}-saga`, applicationId, count: options.sagas })
  const admin = createAdmin({ brokers })
  await admin.createTopics([
    { name: input, partitions },
    { name: output, partitions },
    ...[...csTopicNames, ...sagas.topics].map((name) => ({ name, partitions })),
  ])
  // Read from the start, while everything runs: each record is stamped when it became visible to this reader.
  const tail = await tailTopics([output, ...commandServiceChaosTopicList(csTopics), sagas.events])
  const env = { WEIR_CHAOS_INPUT: input, WEIR_CHAOS_OUTPUT: output, WEIR_CHAOS_TIMER_MIN_MS: '200', WEIR_CHAOS_TIMER_MAX_MS: '3000' }
  let fleet: Fleet | undefined
  let view: ClusterView | undefined
  const halted: Halted = { value: false }
  const brokerFacts: BrokerKillFacts = { kills: 0, targets: [], recoveries: [] }
  try {
    if (options.faults !== undefined) await armChaosFaults(options.faults, brokers, `${applicationId}-cs`)
    fleet = startFleet({ workers: workerCount, csWorkers: csWorkerCount, partitions, brokers, applicationId, base, env, csPrefix, sagaWorkers: sagas.workers, ...(options.faults === undefined ? {} : { csWorkerArgs: options.faults.workerArgs }), keepLogs: keep, progress })
    await fleet.assigned(90_000)
    const producer = createProducer({ brokers })
    const feed = feedRecords(producer, input, records, records / feedSeconds, halted)
    const sent: ChaosRequest[] = []
    const envelopeIds: string[] = []
    const csFeeding = feedCommandService({ producer, topics: cs, delivered, seconds: feedSeconds, requests, envelopes, sent, envelopeIds, halted, faults: options.faults })
    const sagaFeeding = sagas.feed(producer, feedSeconds, halted)
    // A run that fails before it awaits the feeds must not crash on their rejection (its own error is the report).
    feed.done.catch(() => {})
    csFeeding.catch(() => {})
    sagaFeeding.catch(() => {})
    const workerKills: WorkerKills = await fleet.killWorkers(kills, workerSeconds, feed.fed, records)
    if (schedule.length > 0) {
      await fleet.assigned(180_000)
      view = createClusterView({ brokers, clientId: 'weir-chaos-cluster-view' })
      await killBrokers(view, infra, schedule, {
        applicationId,
        input,
        partitions,
        brokers: brokerCount,
        recoveryTopics: [output, cs.outcomes],
        runTopics: [input, output, ...csTopicNames],
        tail,
        progress,
        fed: () => feed.fed() >= records,
        done: brokerFacts,
      })
    }
    await feed.done
    await csFeeding
    await sagaFeeding
    await producer.close()
    progress.step(`all ${records} records, ${sent.length} requests and ${envelopeIds.length} envelopes fed; waiting for every output, timer and outcome`)
    await fleet.assigned(120_000)
    const { topology, service } = await collect(tail, output, csTopics, { records, sent, envelopeIds }, progress, sagas)
    const csReport = service.report()
    progress.step(`command service: ${csReport.envelopesDelivered}/${csReport.envelopesExpected} envelopes, ${csReport.outcomes} outcomes for ${csReport.requests} requests`)
    const report = chaosRunReport(topology.report(), csReport, {
      kills: workerKills.killed,
      killsRequested: kills,
      restarts: workerKills.restarts,
      unplannedExits: workerKills.unplannedExits,
      workers: workerCount,
      commandServiceWorkers: csWorkerCount,
      partitions,
      seconds: Math.round((performance.now() - started) / 1000),
      brokers: brokerCount,
      brokerKillsRequested,
      brokerKills: brokerFacts.kills,
      brokerKillTargets: brokerFacts.targets,
      brokerRecoverySeconds: brokerFacts.recoveries,
    })
    const outcomeRecords = tail.records.filter((r) => r.record.topic === cs.outcomes).map((r) => r.record)
    return { ...report, ...sagas.tracker.report(), ...chaosFaultFacts(options.faults, sent, outcomeRecords) }
  } finally {
    halted.value = true
    // Every step on its own: one that fails (a broker that is gone) must not leave workers running.
    await fleet?.stop()
    await tail.close().catch(() => {})
    await view?.close().catch(() => {})
    await closeAdmin().catch(() => {})
    if (keep) progress.step(`topics kept: chaos-${runId}.*, ${csPrefix}.*; worker logs and state in ${base}`)
    else await admin.deleteTopics([input, output, ...csTopicNames, ...sagas.topics]).catch(() => {})
    await admin.close().catch(() => {})
    if (!keep) await rm(base, { recursive: true, force: true }).catch(() => {})
  }
}
