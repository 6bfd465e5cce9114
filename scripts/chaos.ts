// `npm run chaos [-- --json] [--records N] [--workers W] [--kills K] [--partitions P] [--rate R]
//                [--requests R] [--envelopes E] [--cs-workers C] [--brokers B] [--broker-kills K] [--keep-topics]
//                [--max-in-flight N] [--io-max-ms M]`
// (--max-in-flight and --io-max-ms: concurrent handlers that await random delays, scripts/chaos/concurrency.ts)
// Runs W worker processes of the chaos topology and C worker processes of the command service
// (test/fixtures/chaos-command-service.ts) on a real broker, feeds both, SIGKILLs workers of both kinds in
// turn and restarts them, while one read_committed reader tails every output and stamps each record with the
// moment it became visible. Once everything expected is there it reads every partition to its end offsets
// again after a pause, and test/helpers/chaos-check.ts judges: no duplicate, no loss, exact per-key state,
// every timer set once and fired once unless cancelled, never after its cancel, never early; every delayed
// envelope (the feed's and the router's out-of-order retries) scheduled once and delivered once, never early;
// every request exactly one outcome, of the kind its class allows; K kills done. Prints, last, one JSON line.
// With --brokers B > 1 it starts its own local B-node cluster (KAFKA_BOOTSTRAP_SERVERS is not used: it must
// kill brokers) and, after the worker kills, SIGKILLs and restarts brokers K times in turn: the leader of a
// source partition, the transaction coordinator of a task, the group coordinator, then a rolling restart of
// every node; after each kill it measures the seconds until every task committed again.
// Every numeric option must be an integer >= 1, --broker-kills >= 0 (else WEIR_ERR_INVALID_OPTIONS, exit 2).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

import { encodeEnvelope } from '../envelope/codec.ts'
import { createEnvelope } from '../envelope/envelope.ts'
import type { Envelope } from '../envelope/envelope.ts'
import { createAdmin, createClusterView, createProducer } from '../kafka/index.ts'
import type { ClusterView, KafkaProducer, OutgoingRecord } from '../kafka/index.ts'
import type { CommandServiceTopics } from '../processors/command-service.ts'
import { schedulerRequestSerde } from '../processors/scheduler.ts'
import { WeirError, invalidOptions } from '../core/errors.ts'
import { chaosCommand, chaosCommandService, chaosRequestPlan, deliveredTopic } from '../test/fixtures/chaos-command-service.ts'
import type { ChaosWork } from '../test/fixtures/chaos-command-service.ts'
import { ChaosTracker, CommandServiceChaosTracker, addCommandServiceRecord, chaosRunReport, chaosVerdict, commandServiceChaosTopicList } from '../test/helpers/chaos-check.ts'
import type { ChaosRequest, ChaosRunReport, CommandServiceChaosTopics } from '../test/helpers/chaos-check.ts'
import { closeAdmin } from '../test/helpers/kafka.ts'
import { tailTopics } from '../test/helpers/tail.ts'
import type { Tail, TailedRecord } from '../test/helpers/tail.ts'
import { spawnWorker, waitForAssignment } from '../test/helpers/workers.ts'
import type { WorkerProcess } from '../test/helpers/workers.ts'
import { CONCURRENCY_OPTIONS, concurrencyWorkerSettings, parseConcurrency } from './chaos/concurrency.ts'
import type { ChaosConcurrency } from './chaos/concurrency.ts'
import { InfraUnavailable, createProgress, provideInfrastructure } from './infra/index.ts'
import type { Infrastructure, LocalNode } from './infra/index.ts'

const ROOT = resolve(import.meta.dirname, '..')

/** Every numeric option and its default; each must be an integer >= 1. */
const NUMERIC = { records: '20000', workers: '3', kills: '6', partitions: '6', rate: '1000', requests: '1500', envelopes: '2000', 'cs-workers': '2', brokers: '1' } as const
type NumericOption = keyof typeof NUMERIC

/** Parses the command line; every violation is reported at once (WEIR_ERR_INVALID_OPTIONS). */
function parseOptions(args: string[]): Record<NumericOption, number> & { json: boolean; keepTopics: boolean; brokerKills: number; concurrency: ChaosConcurrency } {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args,
      options: {
        json: { type: 'boolean', default: false },
        'keep-topics': { type: 'boolean', default: false },
        'broker-kills': { type: 'string', default: '0' },
        ...CONCURRENCY_OPTIONS,
        ...Object.fromEntries(Object.entries(NUMERIC).map(([name, value]) => [name, { type: 'string', default: value }])),
      },
    }).values
  } catch (error) {
    throw invalidOptions('chaos', [error instanceof Error ? error.message : String(error)])
  }
  const violations: string[] = []
  const numbers = {} as Record<NumericOption, number>
  for (const name of Object.keys(NUMERIC) as NumericOption[]) {
    const text = String(values[name])
    // Number('') is 0 and Number('1e3') is 1000: only plain digits are a count.
    if (!/^[0-9]+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) violations.push(`--${name} must be an integer >= 1, got "${text}"`)
    numbers[name] = Number(text)
  }
  const brokerKillsText = String(values['broker-kills'])
  if (!/^[0-9]+$/.test(brokerKillsText) || !Number.isSafeInteger(Number(brokerKillsText))) violations.push(`--broker-kills must be an integer >= 0, got "${brokerKillsText}"`)
  // One broker of min.insync.replicas 2 of 3 may be down; a smaller cluster stops taking writes.
  else if (Number(brokerKillsText) > 0 && numbers.brokers < 3) violations.push(`--broker-kills needs --brokers 3 or more (replication factor 3, min.insync.replicas 2), got --brokers ${String(values.brokers)}`)
  const concurrency = parseConcurrency(values, violations)
  if (violations.length > 0) throw invalidOptions('chaos', violations)
  return { ...numbers, json: values.json === true, keepTopics: values['keep-topics'] === true, brokerKills: Number(brokerKillsText), concurrency }
}

let options: ReturnType<typeof parseOptions>
try {
  options = parseOptions(process.argv.slice(2))
} catch (error) {
  process.stderr.write(`chaos: ${error instanceof WeirError ? `${error.code}: ${error.message}` : String(error)}\n`)
  process.exit(2)
}
const { records, workers: workerCount, kills, partitions, rate, requests, envelopes, 'cs-workers': csWorkerCount, brokers: brokerCount, brokerKills: brokerKillsRequested } = options
const progress = createProgress('chaos')
const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface WorkerSpec {
  name: string
  module: string
  applicationId: string
  env: Record<string, string>
}

async function main(): Promise<ChaosRunReport> {
  if (brokerCount > 1 && process.env.KAFKA_BOOTSTRAP_SERVERS) {
    progress.step(`--brokers ${brokerCount}: starting a cluster of its own (it kills brokers); KAFKA_BOOTSTRAP_SERVERS is not used`)
    delete process.env.KAFKA_BOOTSTRAP_SERVERS
  }
  const infra = await provideInfrastructure({ redis: false, progress, brokers: brokerCount })
  // Whatever fails below, the brokers this run started are stopped (the workers in run()'s own cleanup).
  try {
    return await run(infra)
  } finally {
    await infra.stop().catch(() => {})
  }
}

/** One broker kill of the schedule: what to kill (a rolling restart names its node). */
type BrokerKillKind = 'source-leader' | 'transaction-coordinator' | 'group-coordinator' | 'rolling'

/** Kinds in turn until at least `requested` kills; a rolling restart, once started, covers every node. */
function brokerSchedule(requested: number, nodes: number): Array<{ kind: BrokerKillKind; node?: number }> {
  const schedule: Array<{ kind: BrokerKillKind; node?: number }> = []
  const kinds: BrokerKillKind[] = ['source-leader', 'transaction-coordinator', 'group-coordinator', 'rolling']
  for (let i = 0; schedule.length < requested; i++) {
    const kind = kinds[i % kinds.length] as BrokerKillKind
    if (kind === 'rolling') for (let node = 1; node <= nodes; node++) schedule.push({ kind, node })
    else schedule.push({ kind })
  }
  return schedule
}

/** Time the feed is stretched by per planned broker kill (down, restart, recovery, replicas back in sync), s. */
const SECONDS_PER_BROKER_KILL = 40

async function run(infra: Infrastructure): Promise<ChaosRunReport> {
  process.env.KAFKA_BOOTSTRAP_SERVERS = infra.env.KAFKA_BOOTSTRAP_SERVERS
  const brokers = infra.kafka.brokers
  const schedule = brokerSchedule(brokerKillsRequested, brokerCount)
  // Records, requests and envelopes keep flowing through the broker kills (a commit is seen by its outputs):
  // the feed lasts the worker kills' time plus the broker kills'.
  const workerSeconds = records / rate
  const feedSeconds = workerSeconds + (schedule.length === 0 ? 0 : 20 + schedule.length * SECONDS_PER_BROKER_KILL)
  const feedRate = records / feedSeconds
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
  const admin = createAdmin({ brokers })
  await admin.createTopics([
    { name: input, partitions },
    { name: output, partitions },
    ...csTopicNames.map((name) => ({ name, partitions })),
  ])
  // Read from the start, while everything runs: each record is stamped when it became visible to this reader.
  const tail = await tailTopics([output, ...commandServiceChaosTopicList(csTopics)])
  const env = { WEIR_CHAOS_INPUT: input, WEIR_CHAOS_OUTPUT: output, WEIR_CHAOS_TIMER_MIN_MS: '200', WEIR_CHAOS_TIMER_MAX_MS: '3000' }
  const specs: WorkerSpec[] = [
    ...Array.from({ length: workerCount }, (_, i) => ({ name: `w${i}`, module: resolve(ROOT, 'test/fixtures/chaos-topology.ts'), applicationId, env })),
    ...Array.from({ length: csWorkerCount }, (_, i) => ({
      name: `cs${i}`,
      module: resolve(ROOT, 'test/fixtures/chaos-command-service.ts'),
      applicationId: `${applicationId}-cs`,
      env: { WEIR_CHAOS_CS_PREFIX: csPrefix },
    })),
  ]
  const slots: WorkerProcess[] = []
  const concurrent = concurrencyWorkerSettings(options.concurrency)
  // Ctrl-C, SIGTERM or any exit: the workers go too (the infrastructure's own handlers stop the brokers).
  const killWorkers = () => {
    for (const worker of slots) if (worker !== undefined && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL')
  }
  process.once('SIGINT', killWorkers)
  process.once('SIGTERM', killWorkers)
  process.once('exit', killWorkers)
  const start = (i: number) => {
    const spec = specs[i] as WorkerSpec
    slots[i] = spawnWorker({
      name: spec.name,
      module: spec.module,
      brokers,
      stateDir: join(base, spec.name),
      applicationId: spec.applicationId,
      env: { ...spec.env, ...concurrent.env },
      // Kept runs are for investigation: every worker's log (debug: commits and transactions) beside its state.
      ...(keep ? { logFile: join(base, `${spec.name}.log`) } : {}),
      extraArgs: [...concurrent.extraArgs, ...(keep ? ['--log-level', 'debug'] : [])],
    })
  }
  const chaosWorkers = () => slots.slice(0, workerCount)
  const csWorkers = () => slots.slice(workerCount)
  const assigned = async (timeoutMs: number) => {
    try {
      await waitForAssignment(chaosWorkers(), partitions, timeoutMs)
      await waitForAssignment(csWorkers(), partitions, timeoutMs)
    } catch (error) {
      for (const worker of slots) process.stderr.write(`--- ${worker.name} (last log lines)\n${worker.logs().split('\n').slice(-15).join('\n')}\n`)
      throw error
    }
  }
  let killed = 0
  let restarts = 0
  let unplannedExits = 0
  let view: ClusterView | undefined
  /** Set when the run ends (or fails): the feeds stop before the topics go. */
  const halted = { value: false }
  const brokerFacts = { kills: 0, targets: [] as string[], recoveries: [] as Array<number | null> }
  try {
    for (let i = 0; i < specs.length; i++) start(i)
    progress.step(`${workerCount} chaos workers and ${csWorkerCount} command-service workers starting on ${partitions} partitions`)
    await assigned(90_000)
    const producer = createProducer({ brokers })
    let seq = 0
    const feeding = (async () => {
      // By the clock: each send carries what is due by now, so slow sends (acks from three brokers on a loaded
      // machine) do not stretch the feed beyond feedSeconds.
      const feedStart = performance.now()
      while (seq < records && !halted.value) {
        const due = Math.ceil((feedRate * (performance.now() - feedStart)) / 1000)
        const n = Math.min(Math.max(1, due - seq), records - seq, 1000)
        await producer.send(Array.from({ length: n }, () => ({ topic: input, key: `key-${seq % 101}`, value: JSON.stringify({ seq: seq++ }) })))
        await sleep(50)
      }
    })()
    const sent: ChaosRequest[] = []
    const envelopeIds: string[] = []
    const csFeeding = feedCommandService(producer, cs, delivered, feedSeconds, sent, envelopeIds, halted)
    // A run that fails before it awaits the feeds must not crash on their rejection (its own error is the report).
    feeding.catch(() => {})
    csFeeding.catch(() => {})
    const gap = Math.max(1500, (workerSeconds * 1000) / (kills + 1))
    while (killed < kills) {
      await sleep(random(gap / 2, gap))
      // Both kinds of worker in turn, so each gets its share of the kills.
      const i = killed % 2 === 1 ? workerCount + random(0, csWorkerCount) : random(0, workerCount)
      const victim = slots[i] as WorkerProcess
      // A worker that already exited on its own is restarted, but it is no kill.
      const alive = victim.child.exitCode === null && victim.child.signalCode === null
      await victim.kill('SIGKILL')
      if (alive) killed++
      else unplannedExits++
      progress.step(alive ? `SIGKILL ${victim.name} (${killed}/${kills}); ${seq}/${records} records fed` : `${victim.name} had exited on its own; restarting it`)
      await sleep(random(300, 2000))
      start(i)
      restarts++
    }
    if (schedule.length > 0) {
      await assigned(180_000)
      view = createClusterView({ brokers, clientId: 'weir-chaos-cluster-view' })
      await killBrokers(view, infra, schedule, {
        applicationId,
        input,
        recoveryTopics: [output, cs.outcomes],
        runTopics: [input, output, ...csTopicNames],
        tail,
        fed: () => seq >= records,
        done: brokerFacts,
      })
    }
    await feeding
    await csFeeding
    await producer.close()
    progress.step(`all ${records} records, ${sent.length} requests and ${envelopeIds.length} envelopes fed; waiting for every output, timer and outcome`)
    await assigned(120_000)
    const topology = new ChaosTracker(records)
    const service = new CommandServiceChaosTracker(sent, envelopeIds)
    let absorbed = 0
    const absorb = async () => {
      await tail.caughtUp()
      for (; absorbed < tail.records.length; absorbed++) {
        const { record, visibleAt } = tail.records[absorbed] as TailedRecord
        if (record.topic === output) topology.add(record, visibleAt)
        else addCommandServiceRecord(service, csTopics, record, visibleAt)
      }
    }
    // Until everything expected is there (or the time is up: what is missing then fails the verdict)...
    const deadline = Date.now() + 240_000
    for (await absorb(); !(topology.complete() && service.complete()) && Date.now() < deadline; await absorb()) await sleep(2000)
    const waiting = [...(topology.complete() ? [] : ['chaos topology outputs']), ...(service.complete() ? [] : ['command service records'])]
    progress.step(`${waiting.length === 0 ? 'everything expected is there' : `time is up, still missing: ${waiting.join(', ')}`}; reading to the end offsets again after a pause`)
    // ...then, after a pause, every partition again up to its end offset, so a late duplicate or a second
    // outcome on any partition is counted too.
    await sleep(3000)
    await absorb()
    const csReport = service.report()
    progress.step(`command service: ${csReport.envelopesDelivered}/${csReport.envelopesExpected} envelopes, ${csReport.outcomes} outcomes for ${csReport.requests} requests`)
    return chaosRunReport(topology.report(), csReport, {
      kills: killed,
      killsRequested: kills,
      restarts,
      unplannedExits,
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
  } finally {
    halted.value = true
    // Every step on its own: one that fails (a broker that is gone) must not leave workers running.
    // SIGTERM, then SIGKILL for a worker that is not gone within 30 s.
    await Promise.all(slots.map(async (worker) => {
      if (worker === undefined) return
      const stopped = await Promise.race([worker.kill('SIGTERM').then(() => true, () => true), sleep(30_000).then(() => false)])
      if (!stopped) await worker.kill('SIGKILL').catch(() => {})
    }))
    await tail.close().catch(() => {})
    await view?.close().catch(() => {})
    await closeAdmin().catch(() => {})
    if (keep) progress.step(`topics kept: chaos-${runId}.*, ${csPrefix}.*; worker logs and state in ${base}`)
    else await admin.deleteTopics([input, output, ...csTopicNames]).catch(() => {})
    await admin.close().catch(() => {})
    if (!keep) await rm(base, { recursive: true, force: true }).catch(() => {})
  }
}

interface BrokerKillContext {
  applicationId: string
  input: string
  /** Topics every task of the run writes to on every partition: a new record there is a new commit. */
  recoveryTopics: readonly string[]
  /** Topics whose replicas must be back in sync before the next kill. */
  runTopics: readonly string[]
  tail: Tail
  /** True once the feed sent its last record (no new commits then: recovery cannot be seen). */
  fed(): boolean
  done: { kills: number; targets: string[]; recoveries: Array<number | null> }
}

/** The broker kills of the schedule, one after the other, each followed by its recovery. */
async function killBrokers(view: ClusterView, infra: Infrastructure, schedule: ReturnType<typeof brokerSchedule>, context: BrokerKillContext): Promise<void> {
  const nodes = infra.kafka.nodes ?? []
  const { applicationId, input, recoveryTopics, tail, done } = context
  const expected = recoveryTopics.length * partitions
  let scanned = 0
  /** Seconds from `since` until every partition of the recovery topics had a record visible after it; null after `timeoutMs`. */
  const committedAgain = async (since: number, timeoutMs: number): Promise<number | null> => {
    const first = new Map<string, number>()
    for (let index = scanned; ; ) {
      for (; index < tail.records.length; index++) {
        const { record, visibleAt } = tail.records[index] as TailedRecord
        const key = `${record.topic}\u0000${record.partition}`
        if (visibleAt > since && recoveryTopics.includes(record.topic) && !first.has(key)) first.set(key, visibleAt)
      }
      if (first.size === expected) {
        scanned = index
        return Math.round((Math.max(...first.values()) - since) / 100) / 10
      }
      if (Date.now() - since > timeoutMs) return null
      await sleep(200)
    }
  }
  const target = async (step: (typeof schedule)[number]): Promise<number> => {
    const partition = random(0, partitions)
    if (step.kind === 'rolling') return step.node as number
    if (step.kind === 'source-leader') return (await view.leaders(input))[partition] ?? -1
    if (step.kind === 'transaction-coordinator') return view.coordinator('transaction', `${applicationId}-${partition}`)
    return view.coordinator('group', applicationId)
  }
  const inSync = async () => {
    const replicas = Math.min(brokerCount, 3)
    const topics = [...context.runTopics, ...(await view.topicsWithPrefix(applicationId))]
    for (const topic of topics) {
      const isr = await view.inSyncReplicas(topic).catch(() => [[]])
      if (isr.some((r) => r.length < replicas)) return false
    }
    return true
  }
  for (const step of schedule) {
    // Every task commits before the kill, so the recovery measured is this kill's.
    const flowing = await committedAgain(Date.now(), 60_000)
    if (flowing === null) progress.step(`before the broker kill: not every task committed within 60 s${context.fed() ? ' (the feed has ended)' : ''}`)
    const id = await target(step).catch(() => -1)
    const node = nodes.find((n) => n.id === id) ?? (nodes[random(0, nodes.length)] as LocalNode)
    const since = Date.now()
    await node.kill('SIGKILL')
    done.kills++
    done.targets.push(`${step.kind}:${node.id}`)
    progress.step(`SIGKILL broker ${node.id} (${step.kind}; ${done.kills}/${schedule.length})`)
    await sleep(random(2000, 5000))
    await node.restart()
    const recovery = await committedAgain(since, 90_000)
    done.recoveries.push(recovery)
    progress.step(`broker ${node.id} restarted; ${recovery === null ? `not every task committed again within 90 s${context.fed() ? ' (the feed had ended)' : ''}` : `every task committed again ${recovery} s after the kill`}`)
    const deadline = Date.now() + 180_000
    while (!(await inSync()) && Date.now() < deadline) await sleep(1000)
  }
}

/**
 * Feeds the command service for `seconds`: commands with a deadline (and their registration on the
 * deadlines topic, as the gateway does) and delayed envelopes for the scheduler. Commands, by i % 5:
 * 0-2 race their deadline (20-300 ms TTL, 0-40 ms of work: ok or timeout), 3 have time (HAS_TIME_TTL_MS: ok),
 * 4 have time too and are flagged for out-of-order retries; they fail 0-4 times (4 exhausts the 4
 * deliveries: an error outcome; fewer: ok). Each request is recorded with the outcome it must end as.
 */
/**
 * The TTL of the commands that must not time out: far beyond any stall a run can have (a partition waits for
 * a killed worker's session to time out, then for its state to be restored, on a loaded machine).
 */
const HAS_TIME_TTL_MS = 120_000

async function feedCommandService(
  producer: KafkaProducer,
  cs: CommandServiceTopics,
  delivered: string,
  seconds: number,
  sent: ChaosRequest[],
  envelopeIds: string[],
  halted: { value: boolean },
): Promise<void> {
  const rounds = Math.max(1, Math.ceil((seconds * 1000) / 50))
  let sentRequests = 0
  let sentEnvelopes = 0
  const feedStart = performance.now()
  // By the clock, as the records' feed: a round that ran late is caught up in the next send.
  for (let round = 1; round <= rounds; round = Math.max(round + 1, Math.min(rounds, Math.floor((performance.now() - feedStart) / 50)))) {
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
      sent.push({ requestId: command.requestId, commandId: command.id, ...chaosRequestPlan(work, race) })
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

main().then(
  (report) => {
    const failed = chaosVerdict(report)
    const table = Object.entries(report).map(([k, v]) => `  ${k.padEnd(26)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    process.stderr.write(`\nchaos ${failed.length === 0 ? 'PASSED' : `FAILED (${failed.join(', ')})`}\n${table.join('\n')}\n`)
    if (options.json) process.stdout.write(`${JSON.stringify({ ...report, ...options.concurrency, passed: failed.length === 0, failedChecks: failed })}\n`)
    process.exit(failed.length === 0 ? 0 : 1)
  },
  (error: unknown) => {
    process.stderr.write(`chaos run failed: ${error instanceof InfraUnavailable ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
