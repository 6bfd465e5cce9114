// What bench:partition reports: the figures of a scenario's runs, the human tables and the one JSON line.
import type { DelayedResult } from '../delayed.ts'
import { spread } from '../steady-state.ts'
import type { SteadyStateWindow } from '../steady-state.ts'
import type { Percentiles } from '../transaction-probe.ts'
import type { Figures, ThroughputSample } from '../throughput.ts'

/** How the runs were made, for the report's headings and the JSON document. */
export interface ReportSettings {
  readonly topologyName: string
  /** The io topology's wait per record and records in flight per task. */
  readonly ioMs?: number
  readonly maxInFlight?: number
  readonly cold: boolean
  readonly records: number
  readonly runs: number
  readonly payloadBytes: number
  readonly keyCount: number
  readonly exactlyOnce: boolean
  readonly warmupSeconds: number
  readonly warmupRecords: number
  readonly measuredSeconds: number
  readonly delayedRate: number
}

export interface ThroughputScenario {
  partitions: number
  weir: Figures
  rawClient: Figures
  kafkaStreams?: Figures
  brokerCeiling?: { producerRecordsPerSecond: number; consumerRecordsPerSecond: number }
  ratios: { weirToRawClient: number; weirToKafkaStreams?: number }
  /** Steady state only: the warm-up and the measured window of every system in every run. */
  steadyState?: Record<System, SteadyStateWindow[]>
}

export type System = 'weir' | 'rawClient' | 'kafkaStreams'

export function figures(samples: ThroughputSample[], partitions: number): Figures {
  const rates = samples.map((s) => s.recordsPerSecond)
  const { min, median: rate, max } = spread(rates)
  return {
    recordsPerSecond: rate,
    minRecordsPerSecond: min,
    maxRecordsPerSecond: max,
    perPartitionRecordsPerSecond: Math.round(rate / partitions),
    cpuSecondsPerMillion: Number(spread(samples.map((s) => s.cpuSeconds / (Math.max(1, s.records) / 1e6))).median.toFixed(1)),
    peakRssMb: Math.round(Math.max(...samples.map((s) => s.peakRssMb))),
    runs: rates,
  }
}

export function table(scenarios: ThroughputScenario[], delivery: Record<string, Record<string, DelayedResult>>, settings: ReportSettings, floors: Record<string, Percentiles> = {}): string {
  const { cold, records, topologyName, warmupSeconds, warmupRecords, measuredSeconds, payloadBytes, exactlyOnce, runs, delayedRate } = settings
  const n = (x: number | undefined) => (x === undefined ? '—' : x.toLocaleString('en'))
  // min / median / max of the runs
  const mmm = (f: Figures | undefined) => (f === undefined ? '—' : `${n(f.minRecordsPerSecond)} / **${n(f.recordsPerSecond)}** / ${n(f.maxRecordsPerSecond)}`)
  const how = cold
    ? `COLD (--cold): ${records.toLocaleString('en')} ${topologyName === 'command-service' ? 'commands' : 'records'} preloaded, records/s from ready to the last output visible (read_committed), JIT and caches cold`
    : `steady state: ${records.toLocaleString('en')} preloaded then fed continuously, warm-up ${warmupSeconds} s from the first output${warmupRecords > 0 ? ` and ${warmupRecords.toLocaleString('en')} outputs` : ''} (not counted), records/s over ${measuredSeconds} s measured (outputs visible to read_committed between two samples of the output's last stable offsets)`
  const starved = scenarios.flatMap((s) => Object.entries(s.steadyState ?? {}).flatMap(([system, ws]) => (ws.some((w) => w.starved) ? [`${system} (${s.partitions} partition(s))`] : [])))
  const throughputLines = [
    `Throughput: ${topologyName}${topologyName === 'io' ? ` (${settings.ioMs} ms of I/O per record, max in flight ${settings.maxInFlight} per task)` : ''}, payload ${payloadBytes} B, exactly-once ${exactlyOnce ? 'on' : 'off'}, ${runs} run(s), min / median / max; ${how}`,
    ...(starved.length > 0 ? [`STARVED (the input backlog ran out during a window; those runs are lower bounds): ${starved.join(', ')}`] : []),
    '',
    '| partitions | weir | weir / partition | raw client | Kafka Streams | broker produce | broker consume | weir ÷ raw | weir ÷ KS | weir CPU s / M | KS CPU s / M | weir peak RSS MB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...scenarios.map(
      (s) =>
        `| ${s.partitions} | ${mmm(s.weir)} | ${n(s.weir.perPartitionRecordsPerSecond)} | ${mmm(s.rawClient)} | ${mmm(s.kafkaStreams)} | ${n(s.brokerCeiling?.producerRecordsPerSecond)} | ${n(s.brokerCeiling?.consumerRecordsPerSecond)} | ${s.ratios.weirToRawClient} | ${s.ratios.weirToKafkaStreams ?? '—'} | ${s.weir.cpuSecondsPerMillion} | ${s.kafkaStreams?.cpuSecondsPerMillion ?? '—'} | ${s.weir.peakRssMb} |`,
    ),
    '',
  ]
  const delayedLines = [
    `Delayed delivery: envelopes due uniformly at ${delayedRate.toLocaleString('en')}/s (at least 5 s), lateness = seen by a read_committed reader - due`,
    '',
    '| pending | system | delivered/s | lateness p50 ms | lateness p99 ms | max ms | duplicates | missing | due before ready |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...Object.entries(delivery).flatMap(([pending, bySystem]) =>
      Object.values(bySystem).map((r) => `| ${n(Number(pending))} | ${r.system} | ${n(r.deliveredPerSecond)} | ${n(r.latenessP50Ms)} | ${n(r.latenessP99Ms)} | ${n(r.latenessMaxMs)} | ${r.duplicates} | ${r.missing} | ${r.dueBeforeReady} |`),
    ),
    ...(Object.keys(floors).length > 0
      ? [
          '',
          'The floor: one exactly-once transaction through weir\'s adapter, measured just before each pending size (bench/transaction-probe.ts)',
          '',
          '| pending | transaction p50 ms | transaction p99 ms | weir lateness p99 ÷ transaction p99 |',
          '| ---: | ---: | ---: | ---: |',
          ...Object.entries(floors).map(([pending, f]) => `| ${n(Number(pending))} | ${f.p50} | ${f.p99} | ${floorRatio(delivery[pending]?.weir, f) ?? '—'} |`),
        ]
      : []),
  ]
  // A part that was skipped (--skip) prints nothing rather than an empty table.
  return [...(scenarios.length > 0 ? throughputLines : []), ...(Object.keys(delivery).length > 0 ? delayedLines : [])].join('\n')
}

/** weir's lateness p99 ÷ the p99 of one transaction (the floor), when both were measured. */
function floorRatio(weir: DelayedResult | undefined, floor: Percentiles | undefined): number | null {
  if (weir === undefined || floor === undefined || floor.p99 <= 0) return null
  return Number((weir.latenessP99Ms / floor.p99).toFixed(2))
}

/** The JSON document of --json: one line, the figures per partition count and per pending count, and the details. */
export function jsonReport(scenarios: ThroughputScenario[], delivery: Record<string, Record<string, DelayedResult>>, settings: ReportSettings, floors: Record<string, Percentiles> = {}): string {
  const { cold, records, topologyName, warmupSeconds, warmupRecords, measuredSeconds, payloadBytes, keyCount, exactlyOnce, runs, delayedRate } = settings
  const byPartitions = Object.fromEntries(
    scenarios.map((s) => [
      `partitions=${s.partitions}`,
      {
        weir: s.weir.recordsPerSecond,
        rawClient: s.rawClient.recordsPerSecond,
        kafkaStreams: s.kafkaStreams?.recordsPerSecond ?? null,
        brokerCeiling: s.brokerCeiling?.producerRecordsPerSecond ?? null,
        ratios: s.ratios,
        steadyState: s.steadyState ?? null,
        // The windows are above; details keeps the figures.
        details: { ...s, steadyState: undefined },
      },
    ]),
  )
  const delayedJson = Object.fromEntries(
    Object.entries(delivery).map(([pending, bySystem]) => [
      `pending=${pending}`,
      {
        weir: bySystem.weir?.latenessP99Ms ?? null,
        redisPoller: bySystem.redisPoller?.latenessP99Ms ?? null,
        kafkaStreams: bySystem.kafkaStreams?.latenessP99Ms ?? null,
        transactionFloor: floors[pending] ?? null,
        weirToTransactionP99: floorRatio(bySystem.weir, floors[pending]),
        details: bySystem,
      },
    ]),
  )
  const machine = { cpus: (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? null, node: process.version }
  return `${JSON.stringify({ bench: 'partition', at: new Date().toISOString(), machine, topology: topologyName, ...(topologyName === 'io' ? { ioMs: settings.ioMs, maxInFlight: settings.maxInFlight } : {}), mode: cold ? 'cold' : 'steady', steadyState: cold ? null : { warmupSeconds, warmupRecords, measuredSeconds }, records, payloadBytes, keys: keyCount, exactlyOnce, runs, throughput: byPartitions, delayedDelivery: { ratePerSecond: delayedRate, latenessP99Ms: delayedJson } })}\n`
}
