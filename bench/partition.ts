// `npm run bench:partition [-- options]`: partition throughput and delayed delivery, weir against baselines
// measured in the same run, on the same broker, with the same records. Starts its own infrastructure (Kafka,
// Redis) like every weir command, or uses KAFKA_BOOTSTRAP_SERVERS / REDIS_URL.
//
// Throughput, for each partition count (min / median / max of --runs runs), in steady state by default: the bench
// preloads --records inputs, starts the system, keeps feeding it (a backlog that lasts the warm-up, the window and a
// margin), lets it warm up (--warmup-seconds from its first output, and at least --warmup-records outputs; not counted), then
// measures --seconds: records/s = output records that became visible to a read_committed reader between two samples of
// the output topic's last stable offsets, ÷ the time between the samples (bench/steady-state.ts). With --cold, the
// short run instead: --records preloaded, records/s from ready to the last output visible (JIT and caches cold).
//   weir          the topology (--topology command-service: the orders example service, i.e. dedupe + TTL
//                 arbiter + routing handler with a state store + produce; or counting: a per-key counter; or io:
//                 the counter behind --io-ms of simulated I/O per record, with --max-in-flight records in flight per
//                 task, bench/topologies/io-handler.ts) in a worker process, exactly once;
//   rawClient     the same Kafka adapter with no runtime and no state: fetch -> produce, one transaction per batch;
//   kafkaStreams  the same topology semantics in Kafka Streams 4.x, exactly_once_v2 (bench/baselines/kafka-streams);
//   brokerCeiling Kafka's own ProducerPerformance and ConsumerPerformance.
// Delayed delivery, for each backlog size: weir's scheduler (durable timers), the seeds' Redis poller, and
// Kafka Streams scanning a time-ordered store with a punctuator: delivered/s and lateness p50/p99, and the floor
// of exactly-once delivery measured just before (one transaction, bench/transaction-probe.ts): weir's lateness
// p99 as a ratio to the transaction's p99.
//
// Options: --records N (20000) --partitions 1,4 --runs 3 --payload 100 --eos on|off --topology command-service|counting|io
//          --io-ms 10 --max-in-flight 1 (io: the handler's wait, and the worker's records in flight per task)
//          --warmup-seconds 20 --warmup-records 0 --seconds 30 (the steady-state window) --cold --ks-threads 1
//          (--records: with --cold the whole input of a run; in steady state the backlog preloaded before each system starts)
//          (--payload sizes the counting records; commands are orders/orders/place envelopes of ~400 B)
//          --delayed 10000,100000,1000000 --delayed-rate 20000 --delayed-runs 1
//          --skip throughput,delayed,kafka-streams,redis-poller,ceiling --json
//          --cpu-prof DIR (a V8 CPU profile of each weir worker, for finding where the time goes)
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'

import { createAdmin } from '../kafka/index.ts'
import type { KafkaAdmin, OutgoingRecord } from '../kafka/index.ts'
import { InfraUnavailable, createProgress, provideInfrastructure } from '../scripts/infra/index.ts'
import { measureBrokerCeiling } from './baselines/broker-ceiling.ts'
import { buildKafkaStreamsBaseline, runKafkaStreams, startKafkaStreams } from './baselines/kafka-streams.ts'
import { runDelayed, scenarioFor } from './delayed.ts'
import type { DelayedResult, DelayedSystem } from './delayed.ts'
import { kafkaStreamsScheduler } from './systems/kafka-streams-scheduler.ts'
import { redisPoller } from './systems/redis-poller.ts'
import { weirScheduler } from './systems/weir-scheduler.ts'
import { figures, jsonReport, table } from './partition/report.ts'
import type { ReportSettings, System, ThroughputScenario } from './partition/report.ts'
import { deleteRunTopics, outputOf, prepareRun, send } from './partition/runs.ts'
import type { PreparedRun } from './partition/runs.ts'
import { inputMaker } from './inputs.ts'
import { DEFAULT_PROBE, probeWeirTransactions } from './transaction-probe.ts'
import type { Percentiles } from './transaction-probe.ts'
import { countWindow, createFeederProcess, measureWindow, withTimeout } from './steady-state.ts'
import type { SteadyStateWindow } from './steady-state.ts'
import { runRawClient, runWeirWorker, startRawClient, startWeirWorker } from './throughput.ts'
import type { RunningSystem, ThroughputSample } from './throughput.ts'
import { kafkaSecurity } from '../test/helpers/kafka.ts'

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    records: { type: 'string', default: '20000' },
    partitions: { type: 'string', default: '1,4' },
    runs: { type: 'string', default: '3' },
    payload: { type: 'string', default: '100' },
    eos: { type: 'string', default: 'on' },
    topology: { type: 'string', default: 'command-service' },
    'io-ms': { type: 'string', default: '10' },
    'max-in-flight': { type: 'string', default: '1' },
    keys: { type: 'string', default: '1000' },
    delayed: { type: 'string', default: '10000,100000,1000000' },
    'delayed-rate': { type: 'string', default: '20000' },
    'delayed-runs': { type: 'string', default: '1' },
    skip: { type: 'string', default: '' },
    cold: { type: 'boolean', default: false },
    'warmup-seconds': { type: 'string', default: '20' },
    'warmup-records': { type: 'string', default: '0' },
    seconds: { type: 'string', default: '30' },
    'ks-threads': { type: 'string', default: '1' },
    // Writes a V8 CPU profile of every weir worker process into this folder (open it in Chrome DevTools).
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
})

if (values.help) {
  process.stdout.write(`${(await import('node:fs')).readFileSync(import.meta.filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n')}\n`)
  process.exit(0)
}

const records = Number(values.records)
const runs = Number(values.runs)
const payloadBytes = Number(values.payload)
const keyCount = Number(values.keys)
const partitionCounts = String(values.partitions).split(',').filter(Boolean).map(Number)
const exactlyOnce = values.eos !== 'off'
const topologyName = String(values.topology)
const ioMs = Number(values['io-ms'])
const maxInFlight = Number(values['max-in-flight'])
/** The io topology reads and writes what counting does (Kafka Streams and the raw client see plain counting). */
const countingInputs = topologyName === 'counting' || topologyName === 'io'
const delayedSizes = String(values.delayed).split(',').filter(Boolean).map(Number)
const delayedRate = Number(values['delayed-rate'])
const delayedRuns = Number(values['delayed-runs'])
const skip = new Set(String(values.skip).split(',').filter(Boolean))
const cold = values.cold
const warmupSeconds = Number(values['warmup-seconds'])
const warmupRecords = Number(values['warmup-records'])
const measuredSeconds = Number(values.seconds)
const ksThreads = Number(values['ks-threads'])
const progress = createProgress('bench')

const problems: string[] = []
if (!(records > 1)) problems.push('--records must be > 1')
if (!(runs >= 1)) problems.push('--runs must be >= 1')
if (partitionCounts.some((p) => !(p >= 1))) problems.push('--partitions must list positive numbers')
if (!['command-service', 'counting', 'io'].includes(topologyName)) problems.push('--topology must be command-service, counting or io')
if (!(Number.isInteger(ioMs) && ioMs >= 0)) problems.push('--io-ms must be an integer >= 0')
if (!(Number.isInteger(maxInFlight) && maxInFlight >= 1 && maxInFlight <= 10_000)) problems.push('--max-in-flight must be an integer from 1 to 10000')
if (delayedSizes.some((n) => !(n >= 1))) problems.push('--delayed must list positive numbers')
if (!(warmupSeconds >= 0)) problems.push('--warmup-seconds must be >= 0')
if (!(warmupRecords >= 0)) problems.push('--warmup-records must be >= 0')
if (!(measuredSeconds >= 1)) problems.push('--seconds must be >= 1')
if (!(Number.isInteger(ksThreads) && ksThreads >= 1)) problems.push('--ks-threads must be an integer >= 1')
for (const s of skip) if (!['throughput', 'delayed', 'kafka-streams', 'redis-poller', 'ceiling'].includes(s)) problems.push(`--skip: unknown ${s}`)
if (problems.length > 0) {
  process.stderr.write(`bench:partition: ${problems.join('; ')}\n`)
  process.exit(2)
}

const reportSettings: ReportSettings = { topologyName, ioMs, maxInFlight, cold, records, runs, payloadBytes, keyCount, exactlyOnce, warmupSeconds, warmupRecords, measuredSeconds, delayedRate }

function profileEnv(): Record<string, string> {
  const dir = values['cpu-prof']
  return dir === undefined ? {} : { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${resolve(dir)}`.trim() }
}

/** The order of the systems in run r: rotated, so no system always meets a warmer broker. */
function systemOrder(r: number, withKafkaStreams: boolean): System[] {
  const systems: System[] = ['weir', 'rawClient', ...(withKafkaStreams ? (['kafkaStreams'] as const) : [])]
  for (let i = 0; i < r % systems.length; i++) systems.push(systems.shift() as System)
  return systems
}

/** The short run: --records preloaded once, each system processes all of them, timed from ready to the last output. */
async function coldRun(brokers: string[], admin: KafkaAdmin, classpath: string | undefined, run: string, partitions: number, r: number): Promise<Record<System, ThroughputSample | undefined>> {
  progress.step(`throughput (cold), ${partitions} partition(s), run ${r + 1}/${runs}: preloading ${records.toLocaleString('en')} ${countingInputs ? 'records' : 'commands'}`)
  const prepared = await prepareRun(brokers, admin, run, partitions, { topologyName, keyCount, payloadBytes, ioMs, maxInFlight })
  const all: OutgoingRecord[] = []
  const make = inputMaker(prepared.spec)
  for (let i = 0; i < records; i++) all.push(...make(i))
  await send(brokers, all, countingInputs ? 'records' : 'commands', progress)
  const samples: Record<System, ThroughputSample | undefined> = { weir: undefined, rawClient: undefined, kafkaStreams: undefined }
  for (const system of systemOrder(r, classpath !== undefined)) {
    let sample: ThroughputSample
    if (system === 'weir') {
      sample = await runWeirWorker({
        brokers,
        admin,
        module: prepared.weirModule,
        applicationId: prepared.weirApp,
        env: { ...prepared.weirEnv, ...profileEnv() },
        partitions,
        output: prepared.weirOutput,
        expected: records,
        exactlyOnce,
      })
    } else if (system === 'rawClient') {
      sample = await runRawClient({ brokers, admin, input: prepared.input, output: outputOf(system, run, prepared), records, run, exactlyOnce })
    } else {
      const result = await runKafkaStreams({
        brokers,
        mode: countingInputs ? 'counting' : 'command-service',
        input: prepared.input,
        output: outputOf(system, run, prepared),
        applicationId: `bench-ks-${run}`,
        exactlyOnce,
        threads: ksThreads,
        expectedOutputs: records,
        extraArgs: prepared.ksExtra,
        ...(classpath === undefined ? {} : { classpath }),
      })
      sample = { recordsPerSecond: Math.round(records / Math.max(0.001, result.runningSeconds)), seconds: result.runningSeconds, cpuSeconds: result.cpuSeconds, records, peakRssMb: result.peakRssMb }
    }
    samples[system] = sample
    progress.step(`  ${system.padEnd(12)} ${sample.recordsPerSecond.toLocaleString('en')} records/s`)
  }
  await deleteRunTopics(admin, run)
  return samples
}

async function startSystem(system: System, brokers: string[], run: string, partitions: number, prepared: PreparedRun, classpath: string | undefined): Promise<RunningSystem> {
  if (system === 'weir') {
    return startWeirWorker({ brokers, module: prepared.weirModule, applicationId: prepared.weirApp, env: { ...prepared.weirEnv, ...profileEnv() }, partitions, exactlyOnce })
  }
  if (system === 'rawClient') return startRawClient({ brokers, input: prepared.input, output: outputOf(system, run, prepared), run, exactlyOnce })
  const ks = await startKafkaStreams({
    brokers,
    mode: countingInputs ? 'counting' : 'command-service',
    input: prepared.input,
    output: outputOf(system, run, prepared),
    applicationId: `bench-ks-${run}`,
    exactlyOnce,
    threads: ksThreads,
    extraArgs: prepared.ksExtra,
    progress,
    ...(classpath === undefined ? {} : { classpath }),
  })
  let readyAt: number
  try {
    readyAt = await withTimeout(ks.running, 180_000, () => 'Kafka Streams was not RUNNING within 180 s')
  } catch (error) {
    await ks.stop()
    throw error
  }
  return {
    readyAt,
    cpuSeconds: async () => (await ks.usage()).cpuSeconds,
    peakRssMb: async () => (await ks.usage()).peakRssMb,
    problem: () => ks.problem(),
    async stop() {
      await ks.stop()
    },
  }
}

/**
 * One system in steady state, on topics of its own: preload --records, start it, feed it while it warms up and
 * through the window (bench/steady-state.ts), stop it, then count the window's outputs.
 */
async function steadyRun(system: System, brokers: string[], admin: KafkaAdmin, classpath: string | undefined, run: string, partitions: number): Promise<{ sample: ThroughputSample; window: SteadyStateWindow }> {
  const prepared = await prepareRun(brokers, admin, run, partitions, { topologyName, keyCount, payloadBytes, ioMs, maxInFlight })
  const output = outputOf(system, run, prepared)
  const feeder = await createFeederProcess(brokers, prepared.spec, `bench-feeder-${run}`)
  try {
    progress.step(`  ${system}: preloading ${records.toLocaleString('en')} ${countingInputs ? 'records' : 'commands'}, then warm-up ${warmupSeconds} s${warmupRecords > 0 ? ` and ${warmupRecords.toLocaleString('en')} outputs` : ''}, ${measuredSeconds} s measured`)
    await feeder.feed(records)
    const running = await startSystem(system, brokers, run, partitions, prepared, classpath)
    let window: SteadyStateWindow
    let peakRssMb: number
    try {
      window = await measureWindow({
        brokers,
        output,
        partitions,
        feeder,
        readyAt: running.readyAt,
        warmupSeconds,
        warmupRecords,
        measuredSeconds,
        cpu: () => running.cpuSeconds(),
        alive: () => running.problem(),
        name: system,
        progress,
      })
      peakRssMb = await running.peakRssMb()
    } finally {
      await running.stop()
    }
    window = await countWindow(brokers, output, window)
    const sample = { recordsPerSecond: window.recordsPerSecond, seconds: window.measuredSeconds, cpuSeconds: window.cpuSeconds, records: window.records, peakRssMb }
    return { sample, window }
  } finally {
    await feeder.close()
    await deleteRunTopics(admin, run)
  }
}

async function throughput(brokers: string[], admin: KafkaAdmin, classpath: string | undefined): Promise<ThroughputScenario[]> {
  const scenarios: ThroughputScenario[] = []
  for (const partitions of partitionCounts) {
    const samples: Record<System, ThroughputSample[]> = { weir: [], rawClient: [], kafkaStreams: [] }
    const windows: Record<System, SteadyStateWindow[]> = { weir: [], rawClient: [], kafkaStreams: [] }
    for (let r = 0; r < runs; r++) {
      const run = `${Date.now().toString(36)}-${partitions}-${r}`
      if (cold) {
        const cold = await coldRun(brokers, admin, classpath, run, partitions, r)
        for (const system of ['weir', 'rawClient', 'kafkaStreams'] as const) if (cold[system] !== undefined) samples[system].push(cold[system])
        continue
      }
      progress.step(`throughput (steady state), ${partitions} partition(s), run ${r + 1}/${runs}`)
      for (const system of systemOrder(r, classpath !== undefined)) {
        const { sample, window } = await steadyRun(system, brokers, admin, classpath, `${run}-${system}`, partitions)
        samples[system].push(sample)
        windows[system].push(window)
        progress.step(
          `  ${system.padEnd(12)} ${sample.recordsPerSecond.toLocaleString('en')} records/s over ${window.measuredSeconds.toFixed(1)} s (${window.records.toLocaleString('en')} outputs; fed ${window.fedDuringWindow.toLocaleString('en')} during the window${window.starved ? '; STARVED: the backlog ran out' : ''})`,
        )
      }
    }
    const scenario: ThroughputScenario = {
      partitions,
      weir: figures(samples.weir, partitions),
      rawClient: figures(samples.rawClient, partitions),
      ratios: { weirToRawClient: 0 },
    }
    if (!cold) scenario.steadyState = windows
    if (samples.kafkaStreams.length > 0) scenario.kafkaStreams = figures(samples.kafkaStreams, partitions)
    if (!skip.has('ceiling')) {
      progress.step(`broker ceiling, ${partitions} partition(s): ProducerPerformance and ConsumerPerformance`)
      const ceiling = await measureBrokerCeiling({ brokers, topic: `bench-ceiling-${Date.now().toString(36)}-${partitions}`, partitions, records: Math.max(records * 5, 100_000), recordSize: payloadBytes, progress })
      scenario.brokerCeiling = { producerRecordsPerSecond: Math.round(ceiling.producer.recordsPerSecond), consumerRecordsPerSecond: Math.round(ceiling.consumer.recordsPerSecond) }
    }
    scenario.ratios.weirToRawClient = Number((scenario.weir.recordsPerSecond / scenario.rawClient.recordsPerSecond).toFixed(2))
    if (scenario.kafkaStreams !== undefined) scenario.ratios.weirToKafkaStreams = Number((scenario.weir.recordsPerSecond / scenario.kafkaStreams.recordsPerSecond).toFixed(2))
    scenarios.push(scenario)
  }
  return scenarios
}

async function delayed(brokers: string[], admin: KafkaAdmin, classpath: string | undefined, redisUrl: string | undefined): Promise<{ results: Record<string, Record<string, DelayedResult>>; floors: Record<string, Percentiles> }> {
  const results: Record<string, Record<string, DelayedResult>> = {}
  const floors: Record<string, Percentiles> = {}
  for (const pending of delayedSizes) {
    // The floor of exactly-once delivery on this broker, right before the systems run: one transaction after
    // another through weir's adapter (bench:transaction's probe, its defaults).
    progress.step(`delayed delivery, ${pending.toLocaleString('en')} pending: the floor, ${DEFAULT_PROBE.warmup} + ${DEFAULT_PROBE.transactions} transactions (bench/transaction-probe.ts)`)
    const floor = await probeWeirTransactions(brokers, `bench-floor-${Date.now().toString(36)}-${pending}`, DEFAULT_PROBE, true)
    floors[String(pending)] = floor.total
    progress.step(`  one transaction: p50 ${floor.total.p50} ms, p99 ${floor.total.p99} ms`)
    const systems: Array<() => DelayedSystem> = [() => weirScheduler(profileEnv())]
    if (redisUrl !== undefined && !skip.has('redis-poller')) systems.push(() => redisPoller({ redisUrl }))
    if (classpath !== undefined) systems.push(() => kafkaStreamsScheduler(classpath))
    const byPending: Record<string, DelayedResult[]> = {}
    for (let r = 0; r < delayedRuns; r++) {
      for (const make of systems) {
        const system = make()
        progress.step(`delayed delivery, ${pending.toLocaleString('en')} pending at ${delayedRate.toLocaleString('en')}/s: ${system.name}`)
        const result = await runDelayed(system, scenarioFor(pending, delayedRate), { brokers, admin, runId: `${Date.now().toString(36)}-${system.name}-${pending}`, progress })
        progress.step(`  ${system.name}: ${result.deliveredPerSecond.toLocaleString('en')}/s, lateness p50 ${result.latenessP50Ms} ms, p99 ${result.latenessP99Ms} ms`)
        ;(byPending[system.name] ??= []).push(result)
      }
    }
    // The run with the median p99 stands for each system.
    results[String(pending)] = Object.fromEntries(
      Object.entries(byPending).map(([name, list]) => [name, [...list].sort((a, b) => a.latenessP99Ms - b.latenessP99Ms)[Math.floor(list.length / 2)] as DelayedResult]),
    )
  }
  return { results, floors }
}

async function main() {
  const infra = await provideInfrastructure({ redis: !skip.has('redis-poller') && !skip.has('delayed'), progress })
  const brokers = infra.kafka.brokers
  const admin = createAdmin({ ...kafkaSecurity(), brokers })
  try {
    const classpath = skip.has('kafka-streams') ? undefined : await buildKafkaStreamsBaseline(progress)
    const scenarios = skip.has('throughput') ? [] : await throughput(brokers, admin, classpath)
    const { results: delivery, floors } = skip.has('delayed') ? { results: {}, floors: {} } : await delayed(brokers, admin, classpath, infra.redis?.url)
    return { scenarios, delivery, floors }
  } finally {
    await admin.close()
    await infra.stop()
  }
}

main().then(
  ({ scenarios, delivery, floors }) => {
    process.stdout.write(`\n${table(scenarios, delivery, reportSettings, floors)}\n`)
    if (values.json) process.stdout.write(jsonReport(scenarios, delivery, reportSettings, floors))
    process.exit(0)
  },
  (error: unknown) => {
    process.stderr.write(`bench:partition failed: ${error instanceof InfraUnavailable ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
