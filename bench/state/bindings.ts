// `node bench/state/bindings.ts [--json] [--runs 5] [--keys 50000] [--only <text in a scenario name>]`
//
// @nxtedition/rocksdb vs rocksdb-native on what a task's commits and reads do to a local store: write batches of
// 1, 100 and 1000 puts, point gets (hits and misses), multi-gets, batched deletes, 100-key range scans, and the
// timer index (keys ordered by big-endian due time: put in commit-sized batches, then scan the due prefix and
// delete what the scan returned).
//
// Fair by construction: the same keys (16-36 bytes), the same 100-byte values, the same batch sizes and the same
// number of runs for both; each binding with its default RocksDB options (WAL on, not fsynced) and each through its
// public API at its best: for nx, abstract-level getMany for point reads (its get() rejects on a miss) and the
// chained batch for writes; for rocksdb-native, one write batch and one read batch reused for every call, and an
// iterator buffer of limit + 1 entries (its default of 8 costs a thread-pool hop per 8 entries). Reads run on a
// store that was closed and reopened, so the data sits in SST files (RocksDB flushes the recovered WAL on open).
// Rounds are on the outside (every scenario gets a sample per binding per round) and the binding that goes first
// alternates. Reported: the median ops/s of the runs, the ratio rocksdb-native ÷ @nxtedition/rocksdb (above 1:
// rocksdb-native is faster), and the share of the time the event loop was busy (a synchronous binding keeps it
// busy; an asynchronous one leaves it free while RocksDB works on the thread pool). One extra row measures
// @nxtedition/rocksdb's undocumented synchronous multi-get (`_getManySync`); rocksdb-native has no counterpart.
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventLoopUtilization } from 'node:perf_hooks'
import { parseArgs } from 'node:util'

import { createProgress } from '../../scripts/infra/progress.ts'
import { NATIVE, NX, adapters } from './adapters.ts'
import type { Adapter, Op } from './adapters.ts'

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    runs: { type: 'string', default: '5' },
    keys: { type: 'string', default: '50000' },
    only: { type: 'string' },
  },
})
const runs = Number(args.runs)
const keyCount = Number(args.keys)
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(keyCount) || keyCount < 2000) {
  process.stderr.write('usage: node bench/state/bindings.ts [--json] [--runs N>=1] [--keys N>=2000] [--only <text>]\n')
  process.exit(2)
}
const progress = createProgress('bench:state')

// ---------------------------------------------------------------------------------------------------------------
// Data: deterministic, so every binding and every run sees the same bytes.

const VALUE_BYTES = 100
const RANGE_SIZE = 100
// Calls that do one thing each are counted on a subset of the keys, spread over all of them, to bound the runtime.
const POINT_OPS = Math.min(keyCount, 20_000)
const spread = (i: number) => Math.floor((i * keyCount) / POINT_OPS)

function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const random = prng(42)
const noise = Buffer.from(Array.from({ length: 64 * 1024 }, () => Math.floor(random() * 256)))
// Half random bytes, half a repeated template: roughly what a msgpack'd record compresses like.
const template = Buffer.from('{"status":"ok","count":12,"owner":"acct-000","tags":["a","b"]}'.padEnd(VALUE_BYTES, ' '))
const valueOf = (i: number): Buffer => {
  const v = Buffer.from(template)
  const off = (i * 50) % (noise.length - 50)
  noise.copy(v, 0, off, off + 50)
  return v
}

// 16-36 byte keys in hash order (writes land all over the key space, as keyed records do).
const keyOf = (i: number): Buffer => {
  const hash = (Math.imul(i + 1, 2654435761) >>> 0).toString(16).padStart(8, '0')
  return Buffer.from(`state:${hash}:${String(i).padStart(1 + (i % 21), '0')}`)
}
const keys = Array.from({ length: keyCount }, (_, i) => keyOf(i))
const values = Array.from({ length: keyCount }, (_, i) => valueOf(i))
const missKeys = Array.from({ length: keyCount }, (_, i) => keyOf(keyCount + i))
// Scan starts: existing keys in sorted order, so every scan returns RANGE_SIZE entries.
const sortedKeys = [...keys].sort(Buffer.compare)
const scanStarts = Array.from({ length: 2000 }, (_, i) => sortedKeys[Math.floor(prng(7 + i)() * (keyCount - RANGE_SIZE))] as Buffer)

const TIMER_PREFIX = Buffer.from([0x54]) // 'T'
const timerKey = (dueAt: number, i: number): Buffer => {
  const k = Buffer.alloc(1 + 8 + 12)
  TIMER_PREFIX.copy(k, 0)
  k.writeBigUInt64BE(BigInt(dueAt), 1)
  k.write(`timer-${String(i).padStart(6, '0')}`, 9, 'latin1')
  return k
}
const timeBound = (t: number): Buffer => {
  const k = Buffer.alloc(9)
  TIMER_PREFIX.copy(k, 0)
  k.writeBigUInt64BE(BigInt(t), 1)
  return k
}

// ---------------------------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------------------------
// Scenarios. `prepare` is not timed; `run` is, and returns nothing but must do `ops` operations.

interface Scenario {
  name: string
  ops: number
  unit: string
  /** Written before timing; reads then run on a reopened store (data in SST files, block cache cold). */
  preload: boolean
  only?: string
  run(db: Adapter): Promise<void>
}

const putOps = (from: number, to: number): Op[] => {
  const ops: Op[] = []
  for (let i = from; i < to; i++) ops.push({ type: 'put', key: keys[i] as Buffer, value: values[i] as Buffer })
  return ops
}

// `passes` rounds over the same keys (later rounds overwrite, as state updates do), so a sample lasts long enough.
const putBatches = (size: number, count: number, passes: number): Scenario => ({
  name: `put, batches of ${size}`,
  ops: count * passes,
  unit: 'puts/s',
  preload: false,
  async run(db) {
    for (let pass = 0; pass < passes; pass++) for (let i = 0; i < count; i += size) await db.write(putOps(i, Math.min(count, i + size)))
  },
})

const scenarios: Scenario[] = [
  putBatches(1, POINT_OPS, 1),
  putBatches(100, keyCount, 3),
  putBatches(1000, keyCount, 3),
  {
    name: 'get, hits (1 key per call)',
    ops: POINT_OPS,
    unit: 'gets/s',
    preload: true,
    async run(db) {
      for (let i = 0; i < POINT_OPS; i++) if ((await db.get(keys[spread(i)] as Buffer)) === undefined) throw new Error('expected a hit')
    },
  },
  {
    name: 'get, misses (1 key per call)',
    ops: POINT_OPS,
    unit: 'gets/s',
    preload: true,
    async run(db) {
      for (let i = 0; i < POINT_OPS; i++) if ((await db.get(missKeys[spread(i)] as Buffer)) !== undefined) throw new Error('expected a miss')
    },
  },
  {
    name: 'getMany, 100 keys per call (half hits)',
    ops: keyCount,
    unit: 'keys/s',
    preload: true,
    async run(db) {
      for (let i = 0; i < keyCount; i += 100) {
        const list: Buffer[] = []
        for (let j = i; j < i + 100 && j < keyCount; j++) list.push((j % 2 === 0 ? keys[j] : missKeys[j]) as Buffer)
        await db.getMany(list)
      }
    },
  },
  {
    name: `range scan of ${RANGE_SIZE} keys`,
    ops: scanStarts.length,
    unit: 'scans/s',
    preload: true,
    async run(db) {
      for (const gte of scanStarts) if ((await db.scan({ gte, limit: RANGE_SIZE })).length !== RANGE_SIZE) throw new Error('short scan')
    },
  },
  {
    name: 'delete, batches of 100',
    ops: keyCount * 3,
    unit: 'deletes/s',
    preload: true,
    async run(db) {
      // Present keys, absent keys, then the first ones again: RocksDB writes a tombstone either way.
      for (const list of [keys, missKeys, keys]) {
        for (let i = 0; i < keyCount; i += 100) await db.write(list.slice(i, i + 100).map((key) => ({ type: 'del', key })))
      }
    },
  },
  {
    name: 'timer index: put by due time, scan due, delete',
    ops: keyCount,
    unit: 'timers/s',
    preload: false,
    async run(db) {
      // Commits of 100 new timers, due at shuffled times; then the clock advances and each tick fires
      // (scans) up to 100 due timers from where the previous tick stopped and deletes exactly those.
      for (let i = 0; i < keyCount; i += 100) {
        const ops: Op[] = []
        for (let j = i; j < i + 100 && j < keyCount; j++) {
          ops.push({ type: 'put', key: timerKey(1_000_000 + ((j * 7919) % keyCount), j), value: values[j] as Buffer })
        }
        await db.write(ops)
      }
      let fired = 0
      let after: Buffer | undefined
      for (let now = 1_000_000; fired < keyCount; now += 50) {
        const due = await db.scan({ ...(after === undefined ? { gte: TIMER_PREFIX } : { gt: after }), lt: timeBound(now + 1), limit: 100 })
        if (due.length === 0) continue
        await db.write(due.map(([key]) => ({ type: 'del', key })))
        after = (due[due.length - 1] as [Buffer, Buffer])[0]
        fired += due.length
      }
    },
  },
  {
    name: 'get, hits, synchronous (nx _getManySync, undocumented)',
    ops: POINT_OPS,
    unit: 'gets/s',
    preload: true,
    only: NX,
    async run(db) {
      for (let i = 0; i < POINT_OPS; i++) if (db.getSync?.(keys[spread(i)] as Buffer) === undefined) throw new Error('expected a hit')
    },
  },
]

// ---------------------------------------------------------------------------------------------------------------

interface Sample {
  opsPerSecond: number
  loopBusy: number
}

async function sample(make: () => Adapter, scenario: Scenario): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), 'weir-bench-bindings-'))
  try {
    let db = make()
    await db.open(dir)
    if (scenario.preload) {
      for (let i = 0; i < keyCount; i += 1000) await db.write(putOps(i, Math.min(keyCount, i + 1000)))
      await db.close()
      db = make()
      await db.open(dir)
    }
    const elu = eventLoopUtilization()
    const started = performance.now()
    await scenario.run(db)
    const seconds = (performance.now() - started) / 1000
    const loopBusy = eventLoopUtilization(elu).utilization
    await db.close()
    return { opsPerSecond: scenario.ops / seconds, loopBusy }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

interface BindingResult {
  opsPerSecond: number
  loopBusy: number
  samples: number[]
}
interface ScenarioResult {
  scenario: string
  unit: string
  ops: number
  results: Record<string, BindingResult>
  /** rocksdb-native ÷ @nxtedition/rocksdb; above 1 means rocksdb-native is faster. */
  ratio: number | null
}

const plan = scenarios
  .filter((s) => args.only === undefined || s.name.includes(args.only))
  .map((s) => ({ scenario: s, makers: adapters.filter((m) => s.only === undefined || m().name === s.only) }))
const total = plan.reduce((n, p) => n + p.makers.length * runs, 0)
let done = 0
progress.step(`${plan.length} scenarios, ${runs} runs each, ${keyCount.toLocaleString('en')} keys, ${VALUE_BYTES}-byte values`)
// Runs on the outside: every scenario gets one sample per binding per round, so a passing load on the machine
// touches all scenarios alike rather than one block of them; within a scenario the two bindings run back to back.
const samples = new Map<Scenario, Map<string, Sample[]>>(plan.map((p) => [p.scenario, new Map()]))
for (let r = 0; r < runs; r++) {
  for (const { scenario, makers } of plan) {
    const order = r % 2 === 0 ? makers : [...makers].reverse()
    for (const make of order) {
      const name = make().name
      const s = await sample(make, scenario)
      const byName = samples.get(scenario) as Map<string, Sample[]>
      byName.set(name, [...(byName.get(name) ?? []), s])
      done++
      const rate = `${Math.round(s.opsPerSecond).toLocaleString('en')} ${scenario.unit}`
      progress.step(`[${done}/${total}] run ${r + 1} · ${scenario.name} · ${name}: ${rate}`)
    }
  }
}
const report: ScenarioResult[] = plan.map(({ scenario }) => {
  const results: Record<string, BindingResult> = {}
  for (const [name, list] of samples.get(scenario) ?? []) {
    results[name] = {
      opsPerSecond: Math.round(median(list.map((s) => s.opsPerSecond))),
      loopBusy: Number(median(list.map((s) => s.loopBusy)).toFixed(3)),
      samples: list.map((s) => Math.round(s.opsPerSecond)),
    }
  }
  const nx = results[NX]
  const native = results[NATIVE]
  const ratio = nx !== undefined && native !== undefined ? Number((native.opsPerSecond / nx.opsPerSecond).toFixed(2)) : null
  return { scenario: scenario.name, unit: scenario.unit, ops: scenario.ops, results, ratio }
})
progress.done('finished')

const fmt = (n: number | undefined) => (n === undefined ? '–' : n.toLocaleString('en'))
const pct = (n: number | undefined) => (n === undefined ? '–' : `${Math.round(n * 100)}%`)
const rows = [
  `| Scenario (median of ${runs} runs) | ${NX} | ${NATIVE} | ${NATIVE} ÷ ${NX} | loop busy (nx / native) |`,
  '| --- | ---: | ---: | ---: | ---: |',
  ...report.map((r) => {
    const nx = r.results[NX]
    const native = r.results[NATIVE]
    const cells = [
      `${r.scenario} (${r.unit})`,
      fmt(nx?.opsPerSecond),
      fmt(native?.opsPerSecond),
      r.ratio === null ? '–' : r.ratio.toFixed(2),
      `${pct(nx?.loopBusy)} / ${pct(native?.loopBusy)}`,
    ]
    return `| ${cells.join(' | ')} |`
  }),
]
process.stdout.write(`${rows.join('\n')}\n`)
if (args.json) {
  const machine = { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length, cpuModel: cpus()[0]?.model }
  const document = { bench: 'state/bindings', machine, runs, keys: keyCount, valueBytes: VALUE_BYTES, scenarios: report }
  process.stdout.write(`${JSON.stringify(document)}\n`)
}
