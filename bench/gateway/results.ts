// What the gateway load test reports: one JSON document (--json) and the human table.
import type { FloorResult } from './floor.ts'
import { STAGES } from './stages.ts'
import type { Stage, StageStats } from './stages.ts'

export interface Results {
  connections: number
  clientProcesses: number
  targetRate: number
  commitIntervalMs: number
  commitWhenIdle: boolean
  workers: number
  fetchMaxWaitMs: number
  commandLingerMs: number
  partitions: number
  commands: number
  failed: number
  commandsPerSecond: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
  breakdown: Record<Stage, StageStats> | undefined
  events: number
  broadcastDeliveriesPerSecond: number
  bareUwsDeliveriesPerSecond: number
  broadcastToBareRatio: number
  /** The exactly-once request/reply floor at the same rate, warm-up and window (null with --floor false). */
  floor: FloorResult | null
  floorP50Ms: number | null
  floorP99Ms: number | null
  /** weir's latency ÷ the floor's (1 = no cost over the floor). */
  p50Ratio: number | null
  p90Ratio: number | null
  p99Ratio: number | null
}

export function table(r: Results): string {
  const rows = [
    '| measure | value |',
    '| --- | ---: |',
    `| connections (client processes) | ${r.connections} (${r.clientProcesses}) |`,
    `| workers; commit interval, when idle; gateway fetch wait, command linger | ${r.workers}; ${r.commitIntervalMs} ms, ${r.commitWhenIdle ? 'yes' : 'no'}; ${r.fetchMaxWaitMs} ms, ${r.commandLingerMs} ms |`,
    `| results/s (target ${r.targetRate} commands/s) | ${r.commandsPerSecond.toLocaleString('en')} |`,
    `| command -> result p50 / p90 / p99 / max ms | ${r.p50Ms} / ${r.p90Ms} / ${r.p99Ms} / ${r.maxMs} |`,
    `| failed commands | ${r.failed} of ${r.commands} |`,
    `| broadcast deliveries/s | ${r.broadcastDeliveriesPerSecond.toLocaleString('en')} |`,
    `| bare uWS deliveries/s | ${r.bareUwsDeliveriesPerSecond.toLocaleString('en')} |`,
    `| broadcast / bare uWS | ${r.broadcastToBareRatio} |`,
  ]
  if (r.floor !== null) {
    rows.push(
      `| floor (Java client, exactly-once request/reply): results/s | ${r.floor.resultsPerSecond.toLocaleString('en')} |`,
      `| floor command -> result p50 / p90 / p99 / max ms | ${r.floor.p50Ms} / ${r.floor.p90Ms} / ${r.floor.p99Ms} / ${r.floor.maxMs} |`,
      `| floor commands without a result | ${r.floor.missing} of ${r.floor.commands} |`,
      `| weir ÷ floor at p50 / p90 / p99 | ${r.p50Ratio} / ${r.p90Ratio} / ${r.p99Ratio} |`,
    )
  }
  if (r.breakdown !== undefined) {
    rows.push('', '| stage | p50 ms | p99 ms | mean in the slowest 1% ms |', '| --- | ---: | ---: | ---: |')
    for (const [stage, label] of STAGES) {
      const s = r.breakdown[stage]
      rows.push(`| ${label} | ${s.p50Ms} | ${s.p99Ms} | ${s.meanOfSlowest1PctMs} |`)
    }
  }
  return `${rows.join('\n')}\n`
}
