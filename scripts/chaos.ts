// `npm run chaos [-- --json] [--records N] [--workers W] [--kills K] [--partitions P]
//                [--requests R] [--envelopes E] [--cs-workers C] [--keep-topics]`
// Runs W worker processes of the chaos topology and C worker processes of the command service
// (test/fixtures/chaos-command-service.ts) on a real broker, feeds both, SIGKILLs workers of both kinds in
// turn and restarts them, then reads every output with read_committed and checks: no duplicate, no loss,
// exact per-key state, every timer fired once unless cancelled; every delayed envelope (the feed's and the
// router's out-of-order retries) delivered exactly once and not before due; every request exactly one
// outcome (its result or its timeout). Prints, last, one JSON line.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

import { encodeEnvelope } from '../envelope/codec.ts'
import { createEnvelope } from '../envelope/envelope.ts'
import type { Envelope } from '../envelope/envelope.ts'
import { createAdmin, createProducer } from '../kafka/index.ts'
import type { KafkaProducer, OutgoingRecord } from '../kafka/index.ts'
import type { CommandServiceTopics } from '../processors/command-service.ts'
import { schedulerRequestSerde } from '../processors/scheduler.ts'
import { chaosCommand, chaosCommandService, deliveredTopic } from '../test/fixtures/chaos-command-service.ts'
import type { ChaosWork } from '../test/fixtures/chaos-command-service.ts'
import { ChaosTracker, commandServiceChaosPassed, readCommandServiceChaos } from '../test/helpers/chaos-check.ts'
import type { ChaosReport, CommandServiceChaosReport, CommandServiceChaosTracker } from '../test/helpers/chaos-check.ts'
import { consume, readAll } from '../test/helpers/kafka.ts'
import { spawnWorker, waitForAssignment } from '../test/helpers/workers.ts'
import type { WorkerProcess } from '../test/helpers/workers.ts'
import { InfraUnavailable, createProgress, provideInfrastructure } from './infra/index.ts'

const ROOT = resolve(import.meta.dirname, '..')
const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    records: { type: 'string', default: '20000' },
    workers: { type: 'string', default: '3' },
    kills: { type: 'string', default: '6' },
    partitions: { type: 'string', default: '6' },
    rate: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '1500' },
    envelopes: { type: 'string', default: '2000' },
    'cs-workers': { type: 'string', default: '2' },
    'keep-topics': { type: 'boolean', default: false },
    // Nodes of the local cluster (scripts/infra: replication min(N, 3), min.insync.replicas one less).
    brokers: { type: 'string', default: '1' },
  },
})
const records = Number(values.records)
const workerCount = Number(values.workers)
const kills = Number(values.kills)
const partitions = Number(values.partitions)
const rate = Number(values.rate)
const requests = Number(values.requests)
const envelopes = Number(values.envelopes)
const csWorkerCount = Number(values['cs-workers'])
if (!(Number.isInteger(csWorkerCount) && csWorkerCount >= 1 && requests >= 1 && envelopes >= 1)) {
  process.stderr.write('chaos: --cs-workers, --requests and --envelopes must be at least 1\n')
  process.exit(2)
}
const progress = createProgress('chaos')
const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type RunReport = ChaosReport & CommandServiceChaosReport & { kills: number; restarts: number; workers: number; commandServiceWorkers: number; partitions: number; seconds: number }

interface WorkerSpec {
  name: string
  module: string
  applicationId: string
  env: Record<string, string>
}

async function main(): Promise<RunReport> {
  const infra = await provideInfrastructure({ redis: false, progress, brokers: Number(values.brokers) })
  process.env.KAFKA_BOOTSTRAP_SERVERS = infra.env.KAFKA_BOOTSTRAP_SERVERS
  const brokers = infra.kafka.brokers
  const started = performance.now()
  const run = `${Date.now()}`
  const input = `chaos-${run}.input`
  const output = `chaos-${run}.output`
  const applicationId = `weir-chaos-${run}`
  const base = await mkdtemp(join(tmpdir(), 'weir-chaos-'))
  const keep = values['keep-topics'] === true
  const csPrefix = `chaos-${run}-cs`
  const cs = chaosCommandService({ prefix: csPrefix }).topics
  const delivered = deliveredTopic(csPrefix)
  const csTopicNames = [cs.commands, cs.deadlines, cs.scheduler, cs.outcomes, cs.lateResults, cs.events, `${cs.commands}.dlq`, delivered]
  const admin = createAdmin({ brokers })
  await admin.createTopics([
    { name: input, partitions },
    { name: output, partitions },
    ...csTopicNames.map((name) => ({ name, partitions })),
  ])
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
  const start = (i: number) => {
    const spec = specs[i] as WorkerSpec
    slots[i] = spawnWorker({
      name: spec.name,
      module: spec.module,
      brokers,
      stateDir: join(base, spec.name),
      applicationId: spec.applicationId,
      env: spec.env,
      // Kept runs are for investigation: every worker's log (debug: commits and transactions) beside its state.
      ...(keep ? { logFile: join(base, `${spec.name}.log`), extraArgs: ['--log-level', 'debug'] } : {}),
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
  try {
    for (let i = 0; i < specs.length; i++) start(i)
    progress.step(`${workerCount} chaos workers and ${csWorkerCount} command-service workers starting on ${partitions} partitions`)
    await assigned(90_000)
    const producer = createProducer({ brokers })
    let seq = 0
    const feeding = (async () => {
      const batch = Math.max(1, Math.floor(rate / 20))
      while (seq < records) {
        const n = Math.min(batch, records - seq)
        await producer.send(Array.from({ length: n }, () => ({ topic: input, key: `key-${seq % 101}`, value: JSON.stringify({ seq: seq++ }) })))
        await sleep(50)
      }
    })()
    const feedSeconds = records / rate
    const requestIds: string[] = []
    const csFeeding = feedCommandService(producer, cs, delivered, feedSeconds, requestIds)
    const gap = Math.max(1500, (feedSeconds * 1000) / (kills + 1))
    while (killed < kills) {
      await sleep(random(gap / 2, gap))
      // Both kinds of worker in turn, so each gets its share of the kills.
      const i = killed % 2 === 1 ? workerCount + random(0, csWorkerCount) : random(0, workerCount)
      const victim = slots[i] as WorkerProcess
      await victim.kill('SIGKILL')
      killed++
      progress.step(`SIGKILL ${victim.name} (${killed}/${kills}); ${seq}/${records} records fed`)
      await sleep(random(300, 2000))
      start(i)
      restarts++
    }
    await feeding
    await csFeeding
    await producer.close()
    progress.step(`all ${records} records, ${requestIds.length} requests and ${envelopes} envelopes fed; waiting for every output, timer and outcome`)
    await assigned(120_000)
    const tracker = new ChaosTracker(records)
    const outputs = await consume(output, {
      timeoutMs: 180_000,
      until: (record) => {
        tracker.add(record)
        return tracker.complete()
      },
    }).catch(async (error: unknown) => {
      progress.step(`outputs incomplete: ${JSON.stringify(tracker.report())}`)
      throw error
    })
    // Everything expected is there. After a pause, read every partition again up to its end offset, so a
    // late duplicate would be counted too.
    await sleep(3000)
    const final = new ChaosTracker(records)
    for (const record of await readAll(output)) final.add(record)
    progress.step(`outputs complete (${outputs.length} at first, ${final.report().outputs} on the final read)`)
    const report = final.report()
    const csTopics = { commands: cs.commands, scheduler: cs.scheduler, outcomes: cs.outcomes, lateResults: cs.lateResults, deliveries: [delivered] }
    await settle(() => readCommandServiceChaos(csTopics, requestIds), 120_000)
    // As above: after a pause, read everything again, so a late duplicate or a second outcome is counted too.
    await sleep(3000)
    const csFinal = await settle(() => readCommandServiceChaos(csTopics, requestIds), 30_000)
    const csReport = csFinal.report()
    progress.step(`command service: ${csReport.envelopesDelivered}/${csReport.envelopesScheduled} envelopes, ${csReport.outcomes} outcomes for ${csReport.requests} requests`)
    return {
      ...report,
      ...csReport,
      kills: killed,
      restarts,
      workers: workerCount,
      commandServiceWorkers: csWorkerCount,
      partitions,
      seconds: Math.round((performance.now() - started) / 1000),
    }
  } finally {
    for (const worker of slots) await worker?.kill('SIGTERM')
    if (keep) progress.step(`topics kept: chaos-${run}.*, ${csPrefix}.*; worker logs and state in ${base}`)
    else await admin.deleteTopics([input, output, ...csTopicNames]).catch(() => {})
    await admin.close()
    if (!keep) await rm(base, { recursive: true, force: true })
    await infra.stop()
  }
}

/**
 * Feeds the command service for `seconds`: commands with a deadline (and their registration on the
 * deadlines topic, as the gateway does) and delayed envelopes for the scheduler. Commands, by i % 5:
 * 0-2 race their deadline (20-300 ms TTL, 0-40 ms of work), 3 have time (30 s TTL), 4 are flagged for
 * out-of-order retries and fail 0-4 times (4 exhausts the 4 deliveries: an error outcome).
 */
async function feedCommandService(producer: KafkaProducer, cs: CommandServiceTopics, delivered: string, seconds: number, requestIds: string[]): Promise<void> {
  const rounds = Math.max(1, Math.ceil((seconds * 1000) / 50))
  let sentRequests = 0
  let sentEnvelopes = 0
  for (let round = 1; round <= rounds; round++) {
    const batch: OutgoingRecord[] = []
    for (; sentRequests < Math.round((requests * round) / rounds); sentRequests++) {
      const i = sentRequests
      const race = i % 5 < 3
      const outOfOrder = i % 5 === 4
      const command: Envelope<ChaosWork> = createEnvelope({
        kind: 'command',
        ...chaosCommand,
        payload: { workMs: race ? random(0, 40) : random(0, 5), failures: outOfOrder ? random(0, 5) : 0 },
        ttlMs: race ? random(20, 300) : 30_000,
        ...(outOfOrder ? { retry: { outOfOrder: true, count: 0 } } : {}),
      })
      requestIds.push(command.requestId)
      batch.push({ topic: cs.commands, key: command.requestId, value: encodeEnvelope(command) })
      batch.push({ topic: cs.deadlines, key: command.requestId, value: encodeEnvelope(command) })
    }
    for (; sentEnvelopes < Math.round((envelopes * round) / rounds); sentEnvelopes++) {
      const id = `envelope-${sentEnvelopes}`
      const deliverAt = Date.now() + random(300, 8000)
      const value = Buffer.from(JSON.stringify({ id, deliverAt }))
      const request = schedulerRequestSerde.serialize({ op: 'schedule', id, deliverAt, topic: delivered, key: Buffer.from(id), value })
      batch.push({ topic: cs.scheduler, key: id, value: request })
    }
    if (batch.length > 0) await producer.send(batch)
    await sleep(50)
  }
}

/** Reads until every envelope is delivered and every request has its outcome, or the time is up; returns the last read. */
async function settle(read: () => Promise<CommandServiceChaosTracker>, timeoutMs: number): Promise<CommandServiceChaosTracker> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const tracker = await read()
    if (tracker.complete() || Date.now() > deadline) return tracker
    await sleep(2000)
  }
}

main().then(
  (report) => {
    const ok = report.duplicates === 0 && report.lost === 0 && report.timersDuplicated === 0 && report.wrongCounts === 0 && commandServiceChaosPassed(report)
    const table = Object.entries(report).map(([k, v]) => `  ${k.padEnd(24)} ${v}`)
    process.stderr.write(`\nchaos ${ok ? 'PASSED' : 'FAILED'}\n${table.join('\n')}\n`)
    if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`)
    process.exit(ok ? 0 : 1)
  },
  (error: unknown) => {
    process.stderr.write(`chaos run failed: ${error instanceof InfraUnavailable ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
