// bench:partition's steady-state window (bench/steady-state.ts) and bench:gateway's floor (bench/gateway/floor.ts):
// the pure statistics and feeding logic, the window's count against the real broker (committed records between two
// last-stable-offset samples, aborted ones and markers left out), a short real window over the raw client, and a
// short run of the Java request/reply floor.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { after, test } from 'node:test'
import { promisify } from 'node:util'

import { buildKafkaStreamsBaseline } from '../../bench/baselines/kafka-streams.ts'
import { latencyFigures, runFloor } from '../../bench/gateway/floor.ts'
import { countBetween, countWindow, createFeederProcess, feedAmount, measureWindow, offsetDelta, sampleOffsets, spread, windowRate } from '../../bench/steady-state.ts'
import { lastJsonLine, markdown } from '../../bench/report.ts'
import { startRawClient } from '../../bench/throughput.ts'
import { createPartitionReader, createProducer } from '../../kafka/index.ts'
import { brokers, closeAdmin, createTopics, readAll, uniqueName } from '../helpers/kafka.ts'
import { javaBaselineBuildable } from '../helpers/maven.ts'

const quiet = { step: () => {}, done: () => {} }
after(closeAdmin)

const run = promisify(execFile)
const failure = (script: string, args: string[]) =>
  run(process.execPath, [resolve(import.meta.dirname, '../../bench', script), ...args]).then(
    () => undefined,
    (error: { code?: number; stderr?: string }) => error,
  )

test('bad steady-state and floor options are refused before anything runs, every one at once, exit 2', async () => {
  const partition = await failure('partition.ts', ['--seconds', '0', '--warmup-seconds=-1', '--warmup-records', 'x', '--ks-threads', '0'])
  assert.equal(partition?.code, 2)
  assert.match(partition?.stderr ?? '', /--warmup-seconds must be >= 0; --warmup-records must be >= 0; --seconds must be >= 1; --ks-threads must be an integer >= 1/)
  const gateway = await failure('gateway/load.ts', ['--floor', 'maybe', '--seconds', '0'])
  assert.equal(gateway?.code, 2)
  assert.match(gateway?.stderr ?? '', /invalid options: seconds, floor/)
})

test('spread: min, median (the lower middle of an even count: a measured value) and max, in any order', () => {
  assert.deepEqual(spread([5]), { min: 5, median: 5, max: 5 })
  assert.deepEqual(spread([9, 1, 5]), { min: 1, median: 5, max: 9 })
  assert.deepEqual(spread([4, 1, 3, 2]), { min: 1, median: 2, max: 4 })
  assert.throws(() => spread([]), /no values/)
})

test('windowRate and offsetDelta: outputs per second of a window, offset differences summed over partitions', () => {
  assert.equal(windowRate(3000, 1000, 31_000), 100)
  assert.equal(windowRate(5, 1000, 1000), 5000, 'an empty window does not divide by zero')
  assert.equal(offsetDelta({ 0: '10', 1: '0' }, { 0: '25', 1: '7' }), 22)
  assert.equal(offsetDelta({}, { 2: '4' }), 4, 'a partition missing from the first sample starts at 0')
})

test('feedAmount: the warm-up builds a backlog for the rest of the run, the window only tops up below low water', () => {
  const base = { ratePerSecond: 2000, lowWaterSeconds: 5, maxBacklog: 1_000_000 }
  // Warm-up, 10 s of warm-up and window left at 2,000/s: (10 + 5) s × 2,000 × 1.25 = 37,500 ahead of the outputs.
  assert.equal(feedAmount({ ...base, produced: 20_000, visible: 5_000, secondsLeft: 10, measuring: false }), 37_500 - 15_000)
  assert.equal(feedAmount({ ...base, produced: 60_000, visible: 5_000, secondsLeft: 10, measuring: false }), 0)
  // The cap holds during the warm-up.
  assert.equal(feedAmount({ ...base, maxBacklog: 20_000, produced: 10_000, visible: 0, secondsLeft: 100, measuring: false }), 10_000)
  // In the window: nothing while 5 s of backlog remain, then up to 10 s.
  assert.equal(feedAmount({ ...base, produced: 20_000, visible: 5_000, secondsLeft: 10, measuring: true }), 0)
  assert.equal(feedAmount({ ...base, produced: 12_000, visible: 5_000, secondsLeft: 10, measuring: true }), 20_000 - 7_000)
  // Before any output the rate is taken as 1,000/s, so a system that has not started yet still gets input.
  assert.equal(feedAmount({ ...base, ratePerSecond: 0, produced: 0, visible: 0, secondsLeft: 3, measuring: false }), 10_000)
})

test('latencyFigures: the warm-up is left out, commands without a result are counted, percentiles of the rest', () => {
  const samples: Array<[number, number]> = [
    [0, 500], // warm-up: not counted
    [1000, 1010],
    [1001, 1021],
    [1002, 1032],
    [1003, -1], // no result
  ]
  const f = latencyFigures(samples, 1000)
  assert.equal(f.commands, 4)
  assert.equal(f.missing, 1)
  assert.equal(f.p50Ms, 20)
  assert.equal(f.p99Ms, 30)
  assert.equal(f.maxMs, 30)
  assert.equal(f.resultsPerSecond, Math.round(3 / 0.032))
})

test('the window counts the committed records between two last-stable-offset samples, not aborted ones or markers', { timeout: 60_000 }, async (t) => {
  const [topic] = (await createTopics(t, { prefix: 'steady-count', partitions: 2 })) as [string]
  const producer = createProducer({ brokers: brokers(), transactionalId: uniqueName('steady-count-tx') })
  const reader = createPartitionReader({ brokers: brokers(), isolation: 'read_committed' })
  t.after(async () => {
    await producer.close()
    await reader.close()
  })
  const write = async (n: number, commit: boolean) => {
    const tx = await producer.beginTransaction()
    await tx.send(Array.from({ length: n }, (_, i) => ({ topic, partition: i % 2, key: `k${i}`, value: `v${i}` })))
    if (commit) await tx.commit()
    else await tx.abort()
  }
  // The log end (read_uncommitted): equal to the last stable offset once every transaction is decided. The reader's
  // default is read_committed, which made both samples the same open transaction's first offset (0) and the wait pass early.
  const uncommitted = createPartitionReader({ brokers: brokers(), isolation: 'read_uncommitted' })
  t.after(() => uncommitted.close())
  // A commit returns before its markers are written; sample once every transaction is decided (LSO = log end),
  // so the expected counts are exact.
  const settled = async () => {
    for (let i = 0; i < 200; i++) {
      const sample = await sampleOffsets(reader, topic, 2)
      const ends = await sampleOffsets(uncommitted, topic, 2)
      if (JSON.stringify(sample.offsets) === JSON.stringify(ends.offsets)) return sample
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error('the transactions were not decided within 200 samples')
  }
  await write(6, true)
  const start = await settled()
  await write(3, false)
  await write(4, true)
  await write(2, true)
  const end = await settled()
  await write(5, true) // after the window
  assert.ok(end.at >= start.at)
  // Offsets also hold the markers of the three transactions (one per partition each) and the aborted records.
  assert.equal(offsetDelta(start.offsets, end.offsets), 3 + 4 + 2 + 3 * 2)
  assert.equal(await countBetween(brokers(), topic, start.offsets, end.offsets), 6)
  assert.equal(await countBetween(brokers(), topic, end.offsets, end.offsets), 0)
})

test('a short real window over the raw client: warm-up, then the outputs between the samples, fed continuously', { timeout: 120_000 }, async (t) => {
  const [input, output] = (await createTopics(t, { prefix: 'steady-in', partitions: 2 }, { prefix: 'steady-out', partitions: 2 })) as [string, string]
  // The feeder process, as bench:partition runs it.
  const feeder = await createFeederProcess(brokers(), { topology: 'counting', input, keys: 10, payloadBytes: 20 })
  t.after(() => feeder.close())
  await feeder.feed(500)
  const system = await startRawClient({ brokers: brokers(), input, output, run: uniqueName('steady-raw'), exactlyOnce: true })
  let window
  try {
    window = await measureWindow({
      brokers: brokers(),
      output,
      partitions: 2,
      feeder,
      readyAt: system.readyAt,
      warmupSeconds: 1,
      warmupRecords: 100,
      measuredSeconds: 2,
      cpu: () => system.cpuSeconds(),
      alive: () => system.problem(),
      name: 'raw',
      progress: quiet,
    })
  } finally {
    await system.stop()
  }
  assert.ok(window.firstOutputAt >= window.readyAt && window.start.at >= window.firstOutputAt + 1000, 'the window starts after the warm-up, counted from the first output')
  assert.ok(window.end.at - window.start.at >= 2000, 'and lasts at least the measured seconds')
  assert.ok(window.warmupOutputs >= 100, JSON.stringify(window))
  const counted = await countWindow(brokers(), output, window)
  assert.ok(counted.records > 0, JSON.stringify(counted))
  // The count is exactly the output records whose offsets lie between the two samples.
  const all = await readAll(output)
  const inWindow = all.filter((r) => r.offset >= BigInt(window.start.offsets[r.partition] ?? '0') && r.offset < BigInt(window.end.offsets[r.partition] ?? '0'))
  assert.equal(counted.records, inWindow.length)
  assert.equal(counted.recordsPerSecond, windowRate(counted.records, window.start.at, window.end.at))
  assert.ok(feeder.produced >= all.length, 'every output came from a fed input')
})

const skipFloor = javaBaselineBuildable() ? false : 'mvn is missing: cannot build the Kafka Streams baseline (apt-get install maven)'

test('the request/reply floor answers every command exactly once through the Java client', { skip: skipFloor, timeout: 300_000 }, async () => {
  const classpath = await buildKafkaStreamsBaseline(quiet)
  const result = await runFloor({ brokers: brokers(), classpath, prefix: uniqueName('floor'), partitions: 2, rate: 50, warmupSeconds: 1, seconds: 2, fetchMaxWaitMs: 100, progress: quiet })
  // Commands count from the moment they were sent: one due just before the window but sent late is measured too.
  assert.ok(result.commands >= 100 && result.commands <= 150, JSON.stringify(result))
  assert.equal(result.missing, 0, JSON.stringify(result))
  assert.ok(result.p50Ms > 0 && result.p99Ms >= result.p50Ms && result.maxMs >= result.p99Ms, JSON.stringify(result))
})

test('bench/report.ts labels a steady-state run and a cold one, with min / median / max of the runs', () => {
  const figures = (median: number, runs: number[]) => ({ recordsPerSecond: median, minRecordsPerSecond: Math.min(...runs), maxRecordsPerSecond: Math.max(...runs), perPartitionRecordsPerSecond: median, cpuSecondsPerMillion: 200, peakRssMb: 300, runs })
  const scenario = {
    weir: 5000,
    rawClient: 90_000,
    kafkaStreams: 7000,
    brokerCeiling: null,
    ratios: { weirToRawClient: 0.06, weirToKafkaStreams: 0.71 },
    details: { partitions: 1, weir: figures(5000, [5100, 4900, 5000]), rawClient: figures(90_000, [90_000]), kafkaStreams: figures(7000, [7000, 6800, 7200]) },
  }
  const run = { bench: 'partition', at: '2026-12-02T01:00:00.000Z', machine: { cpus: 2, node: 'v24' }, topology: 'command-service', records: 20000, payloadBytes: 100, exactlyOnce: true, runs: 3, throughput: { 'partitions=1': scenario }, delayedDelivery: { ratePerSecond: 20000, latenessP99Ms: {} } }
  const steady = markdown([lastJsonLine(JSON.stringify({ ...run, mode: 'steady', steadyState: { warmupSeconds: 20, warmupRecords: 0, measuredSeconds: 30 } }))], '2 vCPU')
  assert.match(steady, /### Throughput: command-service topology, steady state/)
  assert.match(steady, /warm-up 20 s from the first output \(not counted\), then records\/s over 30 s measured/)
  assert.match(steady, /\| 4,900 \/ 5,000 \/ 5,100 \| 6,800 \/ 7,000 \/ 7,200 \|/)
  // A run from before steady state (no mode) was cold, and its figures had only the list of runs.
  const older = { ...scenario, details: { ...scenario.details, weir: { ...scenario.details.weir, minRecordsPerSecond: undefined, maxRecordsPerSecond: undefined } } }
  const cold = markdown([lastJsonLine(JSON.stringify({ ...run, throughput: { 'partitions=1': older } }))], '2 vCPU')
  assert.match(cold, /### Throughput: command-service topology, cold/)
  assert.match(cold, /\| 4,900 \/ 5,000 \/ 5,100 \|/)
})
