// `npm run bench:cpu-stages -- DIR [--us-per-record US] [--json]`: the CPU budget of a weir worker by stage, from the V8 CPU profiles that
// `bench:partition --cpu-prof DIR` writes. Each sample is charged to the innermost weir source file on its stack
// (a library's work to the weir code that called it); samples with none go to GC, the Kafka client's own callbacks,
// or "other". With --us-per-record (the bench's `cpuSecondsPerMillion` of the same run: CPU seconds per million
// records is µs per record) it splits that figure by stage too. A profile samples the worker's CPU, not wall time,
// so the split holds on a loaded machine.
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

interface CallFrame { functionName: string; url: string }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

interface Rule { stage: string; url: RegExp; fn?: RegExp }

/** weir's own stages, by source file; first matching rule wins, so the more specific come first. */
const WEIR_RULES: readonly Rule[] = [
  { stage: 'envelope decode', url: /envelope\/codec\.ts$/, fn: /decode|validate/i },
  { stage: 'envelope decode', url: /envelope\/never-used\.ts$/ },
  { stage: 'envelope encode', url: /envelope\/codec\.ts$/ },
  { stage: 'envelope create (ids, trace context)', url: /envelope\/envelope\.ts$/ },
  { stage: 'dedupe', url: /processors\/dedupe\.ts$/ },
  { stage: 'deadline arbiter', url: /processors\/deadline-arbiter\.ts$/ },
  { stage: 'router and schema', url: /processors\/(command-router|retry)\.ts$|commands\/catalog\.ts$/ },
  { stage: 'handler', url: /examples\/orders\// },
  { stage: 'durable timers', url: /topology\/runtime\/timers\.ts$/ },
  { stage: 'store reads and writes (write buffer, RocksDB)', url: /\/state\/|topology\/runtime\/(write-buffer|store-hooks)\.ts$/ },
  { stage: 'commit (changelog, offsets, transaction)', url: /topology\/runtime\/committer\.ts$/ },
  { stage: 'produce', url: /kafka\/(producer|produce-routing|chunks|transaction-requests)\.ts$/ },
  { stage: 'fetch', url: /kafka\/(reader|consumer)\.ts$/ },
  { stage: 'task and loop', url: /topology\/runtime\/|topology\/(record|processor|define|serde)\.ts$/ },
]

/** Work with no weir frame above it (a library's own callbacks, the VM). */
const OTHER_RULES: readonly Rule[] = [
  { stage: 'gc', url: /^$/, fn: /^\(garbage collector\)$/ },
  { stage: 'idle', url: /^$/, fn: /^\((idle|program)\)$/ },
  { stage: 'kafka client (its own callbacks: sockets, batches, CRC)', url: /node_modules\/@platformatic\// },
]

function match(rules: readonly Rule[], frame: CallFrame): string | undefined {
  for (const rule of rules) {
    if (!rule.url.test(frame.url)) continue
    if (rule.fn !== undefined && !rule.fn.test(frame.functionName)) continue
    return rule.stage
  }
  return undefined
}

/** Microseconds of CPU per stage in one profile. */
export function stagesOf(profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  // A sample is charged to the innermost weir frame on its stack (library work is charged to the weir code that
  // called it), else to the innermost frame another rule names.
  const cache = new Map<number, { weir?: string; other?: string }>()
  const lookup = (id: number): { weir?: string; other?: string } => {
    const known = cache.get(id)
    if (known !== undefined) return known
    const node = byId.get(id)
    const up = parent.get(id)
    const above = up === undefined ? {} : lookup(up)
    const weir = node === undefined ? undefined : match(WEIR_RULES, node.callFrame)
    const other = node === undefined ? undefined : match(OTHER_RULES, node.callFrame)
    const found = { weir: weir ?? above.weir, other: other ?? above.other }
    cache.set(id, found)
    return found
  }
  const resolve = (id: number): string => {
    const found = lookup(id)
    return found.weir ?? found.other ?? 'other'
  }
  const totals = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const stage = resolve(id)
    totals.set(stage, (totals.get(stage) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  return totals
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'us-per-record': { type: 'string' }, json: { type: 'boolean', default: false } } })
  const dir = positionals[0]
  if (dir === undefined) throw new Error('usage: npm run bench:cpu-stages -- DIR [--us-per-record US] [--json]')
  const files = (await readdir(dir)).filter((name) => name.endsWith('.cpuprofile'))
  if (files.length === 0) throw new Error(`no .cpuprofile files in ${dir}`)
  const totals = new Map<string, number>()
  for (const name of files) {
    const profile = JSON.parse(await readFile(join(dir, name), 'utf8')) as CpuProfile
    for (const [stage, us] of stagesOf(profile)) totals.set(stage, (totals.get(stage) ?? 0) + us)
  }
  const per = values['us-per-record'] === undefined ? undefined : Number(values['us-per-record'])
  if (per !== undefined && !(per > 0)) throw new Error(`--us-per-record must be a positive number, got ${values['us-per-record']}`)
  const busy = [...totals].filter(([stage]) => stage !== 'idle').reduce((sum, [, us]) => sum + us, 0)
  const rows = [...totals].filter(([stage]) => stage !== 'idle').sort((a, b) => b[1] - a[1])
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ profiles: files.length, busyMs: busy / 1000, stages: Object.fromEntries(rows.map(([s, us]) => [s, { share: us / busy, usPerRecord: per === undefined ? undefined : (per * us) / busy }])) })}\n`)
    return
  }
  process.stdout.write(`| stage | share of busy CPU |${per === undefined ? '' : ' µs per record |'}\n| --- | ---: |${per === undefined ? '' : ' ---: |'}\n`)
  for (const [stage, us] of rows) {
    process.stdout.write(`| ${stage} | ${((100 * us) / busy).toFixed(1)} % |${per === undefined ? '' : ` ${((per * us) / busy).toFixed(1)} |`}\n`)
  }
  process.stdout.write(`\n${files.length} profile(s), ${(busy / 1e6).toFixed(1)} s busy CPU${per === undefined ? '' : `, ${per} µs per record in all`}\n`)
}

if (import.meta.main) await main()
