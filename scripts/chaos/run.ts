// One chaos run on infrastructure already provided: topics, the read_committed tail, the workers, the feeds,
// the worker kills, then the broker kills (a cluster), the collection; everything it started is stopped
// however it ends.
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { createAdmin, createClusterView, createProducer } from '../../kafka/index.ts'
import type { ClusterView } from '../../kafka/index.ts'
import { chaosCommandService, deliveredTopic } from '../../test/fixtures/chaos-command-service.ts'
import { chaosRunReport, chaosVerdict, commandServiceChaosTopicList } from '../../test/helpers/chaos-check.ts'
import type { ChaosRequest, ChaosRunReport, CommandServiceChaosTopics } from '../../test/helpers/chaos-check.ts'
import type { SagaChaosReport } from '../../test/helpers/saga-chaos-check.ts'
import { sagaChaosVerdict } from '../../test/helpers/saga-chaos-check.ts'
import { closeAdmin, kafkaSecurity } from '../../test/helpers/kafka.ts'
import { tailTopics } from '../../test/helpers/tail.ts'
import type { Infrastructure, Progress } from '../infra/index.ts'
import { SECONDS_PER_BROKER_KILL, brokerSchedule, killBrokers } from './broker-kills.ts'
import type { BrokerKillFacts } from './broker-kills.ts'
import { collect } from './collect.ts'
import { feedCommandService, feedRecords } from './feed.ts'
import type { Halted, Held } from './feed.ts'
import { startFleet } from './fleet.ts'
import type { Fleet, WorkerKills } from './fleet.ts'
import type { ChaosOptions } from './options.ts'
import { sagaChaos } from './sagas.ts'
import { armChaosFaults, chaosFaultFacts } from './faults.ts'
import { concurrencyWorkerSettings } from './concurrency.ts'

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
  const admin = createAdmin({ ...kafkaSecurity(), brokers })
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
  const held: Held = { value: schedule.length > 0 }
  const brokerFacts: BrokerKillFacts = { kills: 0, targets: [], recoveries: [] }
  /** A run that fails (or throws) keeps its workers' logs, with the brokers' logs beside them, for investigation. */
  let passed = false
  try {
    if (options.faults !== undefined) await armChaosFaults(options.faults, brokers, `${applicationId}-cs`)
    fleet = startFleet({ workers: workerCount, csWorkers: csWorkerCount, partitions, brokers, applicationId, base, env, csPrefix, sagaWorkers: sagas.workers, everyWorker: concurrencyWorkerSettings(options.concurrency), ...(options.faults === undefined ? {} : { csWorkerArgs: options.faults.workerArgs }), debugLogs: keep, progress })
    await fleet.assigned(90_000)
    const producer = createProducer({ ...kafkaSecurity(), brokers })
    const feed = feedRecords(producer, input, records, feedSeconds, halted, held)
    const sent: ChaosRequest[] = []
    const envelopeIds: string[] = []
    const csFeeding = feedCommandService({ producer, topics: cs, delivered, seconds: feedSeconds, requests, envelopes, sent, envelopeIds, halted, held, faults: options.faults })
    const sagaFeeding = sagas.feed(producer, feedSeconds, halted)
    // A run that fails before it awaits the feeds must not crash on their rejection (its own error is the report).
    feed.done.catch(() => {})
    csFeeding.catch(() => {})
    sagaFeeding.catch(() => {})
    const workerKills: WorkerKills = await fleet.killWorkers(kills, workerSeconds, feed.fed, records)
    if (schedule.length > 0) {
      await fleet.assigned(180_000)
      view = createClusterView({ ...kafkaSecurity(), brokers, clientId: 'weir-chaos-cluster-view' })
      await killBrokers(view, infra, schedule, {
        applicationId,
        input,
        partitions,
        brokers: brokerCount,
        recoveryTopics: [[output], [cs.outcomes, cs.lateResults, deadLetters, delivered]],
        runTopics: [input, output, ...csTopicNames],
        tail,
        progress,
        fed: () => !held.value && feed.fed() >= records,
        done: brokerFacts,
      })
      held.value = false
    }
    await feed.done
    await csFeeding
    await sagaFeeding
    await producer.close()
    progress.step(`all ${feed.fed()} records, ${sent.length} requests and ${envelopeIds.length} envelopes fed; waiting for every output, timer and outcome`)
    await fleet.assigned(120_000)
    const { topology, service } = await collect(tail, output, csTopics, { records: feed.fed(), sent, envelopeIds }, progress, sagas)
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
    const full = { ...report, ...sagas.tracker.report(), ...chaosFaultFacts(options.faults, sent, outcomeRecords) }
    passed = chaosVerdict(full).length === 0 && sagaChaosVerdict(full).length === 0
    return full
  } finally {
    halted.value = true
    held.value = false
    // Every step on its own: one that fails (a broker that is gone) must not leave workers running.
    await fleet?.stop()
    await tail.close().catch(() => {})
    await view?.close().catch(() => {})
    await closeAdmin().catch(() => {})
    if (keep) progress.step(`topics kept: chaos-${runId}.*, ${csPrefix}.*`)
    else await admin.deleteTopics([input, output, ...csTopicNames, ...sagas.topics]).catch(() => {})
    await admin.close().catch(() => {})
    if (keep || !passed) {
      // The brokers' logs go when the cluster stops: copied beside the workers' first.
      for (const node of infra.kafka.nodes ?? []) await copyFile(node.logFile, join(base, `broker-${node.id}.log`)).catch(() => {})
      progress.step(`${passed ? 'kept' : 'the run failed'}: worker logs${(infra.kafka.nodes?.length ?? 0) > 0 ? ', broker logs' : ''} and state in ${base}`)
    } else await rm(base, { recursive: true, force: true }).catch(() => {})
  }
}
