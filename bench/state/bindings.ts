// `node bench/state/bindings.ts [--json] [--runs 3]`: @nxtedition/rocksdb vs rocksdb-native on what a commit
// does to a local store: write batches of 1, 100 and 1000 puts, point reads (hits and misses), batched deletes,
// 100-key range scans, and the timer pattern (keys ordered by big-endian time: scan the due prefix, delete it).
// Same data, same batch sizes, same number of runs for both; the median of the runs is reported.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { RocksLevel } from '@nxtedition/rocksdb'
import RocksDB from 'rocksdb-native'

const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, runs: { type: 'string', default: '3' } } })
const runs = Number(values.runs)
const N = 20_000
const value = Buffer.alloc(100, 7)
const key = (i: number) => Buffer.from(`key-${String(i).padStart(10, '0')}-${(i * 2654435761) % 1000}`)
const timeKey = (t: number, i: number) => {
  const b = Buffer.alloc(8 + 12)
  b.writeBigUInt64BE(BigInt(t))
  b.write(`timer-${i}`, 8)
  return b
}

interface Binding {
  name: string
  open(path: string): Promise<void>
  write(ops: Array<{ put?: [Buffer, Buffer]; del?: Buffer }>): Promise<void>
  get(keys: Buffer[]): Promise<Array<Buffer | undefined>>
  range(gte: Buffer, lt: Buffer, limit: number): Promise<number>
  close(): Promise<void>
}

function nx(sync: boolean): Binding {
  let db: RocksLevel<Buffer, Buffer>
  return {
    name: sync ? '@nxtedition/rocksdb (sync reads)' : '@nxtedition/rocksdb',
    async open(path) {
      db = new RocksLevel(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
      await db.open()
    },
    async write(ops) {
      await db.batch(ops.map((o) => (o.put ? { type: 'put' as const, key: o.put[0], value: o.put[1] } : { type: 'del' as const, key: o.del as Buffer })))
    },
    async get(keys) {
      if (sync) return (db as unknown as { _getManySync(k: Buffer[]): Array<Buffer | undefined> })._getManySync(keys)
      return (await db.getMany(keys)) as Array<Buffer | undefined>
    },
    async range(gte, lt, limit) {
      let n = 0
      for await (const _ of db.iterator({ gte, lt, limit })) n++
      return n
    },
    close: () => db.close(),
  }
}

function native(): Binding {
  let db: RocksDB
  return {
    name: 'rocksdb-native',
    async open(path) {
      db = new RocksDB(path)
      await db.ready()
    },
    async write(ops) {
      const batch = db.write({ capacity: ops.length })
      for (const o of ops) {
        if (o.put) batch.tryPut(o.put[0], o.put[1])
        else batch.tryDelete(o.del as Buffer)
      }
      await batch.flush()
      batch.destroy()
    },
    async get(keys) {
      const batch = db.read({ capacity: keys.length })
      const promises = keys.map((k) => batch.get(k))
      batch.tryFlush()
      const result = (await Promise.all(promises)) as Array<Buffer | null>
      batch.destroy()
      return result.map((v) => v ?? undefined)
    },
    async range(gte, lt, limit) {
      let n = 0
      for await (const _ of db.iterator({ gte, lt, limit })) n++
      return n
    },
    close: () => db.close(),
  }
}

type Scenario = { name: string; ops: number; run(b: Binding): Promise<void> }

const scenarios: Scenario[] = [
  ...[1, 100, 1000].map((size) => ({
    name: `put batches of ${size}`,
    ops: N,
    async run(b: Binding) {
      for (let i = 0; i < N; i += size) await b.write(Array.from({ length: Math.min(size, N - i) }, (_, j) => ({ put: [key(i + j), value] as [Buffer, Buffer] })))
    },
  })),
  {
    name: 'point gets, hits (1 per call)',
    ops: N,
    async run(b) {
      for (let i = 0; i < N; i++) await b.get([key(i)])
    },
  },
  {
    name: 'point gets, misses (1 per call)',
    ops: N,
    async run(b) {
      for (let i = 0; i < N; i++) await b.get([key(N + i)])
    },
  },
  {
    name: 'gets, 100 per call',
    ops: N,
    async run(b) {
      for (let i = 0; i < N; i += 100) await b.get(Array.from({ length: 100 }, (_, j) => key(i + j)))
    },
  },
  {
    name: 'range scans of 100 keys',
    ops: 2000,
    async run(b) {
      for (let i = 0; i < 2000; i++) {
        const start = (i * 97) % (N - 200)
        await b.range(key(start), key(N + 1), 100)
      }
    },
  },
  {
    name: 'deletes, batches of 100',
    ops: N,
    async run(b) {
      for (let i = 0; i < N; i += 100) await b.write(Array.from({ length: 100 }, (_, j) => ({ del: key(i + j) })))
    },
  },
  {
    name: 'timer pattern: put 20k, scan+delete due in 100s',
    ops: N,
    async run(b) {
      for (let i = 0; i < N; i += 1000) await b.write(Array.from({ length: 1000 }, (_, j) => ({ put: [timeKey(1_000_000 + i + j, i + j), value] as [Buffer, Buffer] })))
      for (let now = 1_000_000; now < 1_000_000 + N; now += 100) {
        const due: Buffer[] = []
        const upper = Buffer.alloc(8)
        upper.writeBigUInt64BE(BigInt(now + 100))
        // Scan keys only via range count then delete by reconstructing (same work for both bindings).
        await b.range(timeKey(now, 0).subarray(0, 8), upper, 100)
        for (let j = 0; j < 100; j++) due.push(timeKey(now + j, now - 1_000_000 + j))
        await b.write(due.map((k) => ({ del: k })))
      }
    },
  },
]

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

const bindings = [() => nx(false), () => nx(true), () => native()]
const results: Record<string, Record<string, number>> = {}
for (const scenario of scenarios) {
  results[scenario.name] = {}
  for (const make of bindings) {
    const samples: number[] = []
    let name = ''
    for (let r = 0; r < runs; r++) {
      const dir = await mkdtemp(join(tmpdir(), 'weir-bind-'))
      const b = make()
      name = b.name
      await b.open(dir)
      // Scenarios that read or delete need the keys written first.
      if (!scenario.name.startsWith('put') && !scenario.name.startsWith('timer')) await scenarios[2]?.run(b)
      const started = performance.now()
      await scenario.run(b)
      samples.push(scenario.ops / ((performance.now() - started) / 1000))
      await b.close()
      await rm(dir, { recursive: true, force: true })
    }
    ;(results[scenario.name] as Record<string, number>)[name] = Math.round(median(samples))
    process.stderr.write(`  ${scenario.name.padEnd(48)} ${name.padEnd(34)} ${Math.round(median(samples)).toLocaleString('en')} ops/s\n`)
  }
}

const names = Object.keys(Object.values(results)[0] ?? {})
const header = `| Scenario (median of ${runs} runs, ops/s) | ${names.join(' | ')} | rocksdb-native ÷ @nxtedition (sync) |`
const lines = [header, `| --- | ${names.map(() => '---:').join(' | ')} | ---: |`]
for (const [scenario, byName] of Object.entries(results)) {
  const ratio = (byName['rocksdb-native'] ?? 0) / (byName['@nxtedition/rocksdb (sync reads)'] ?? 1)
  lines.push(`| ${scenario} | ${names.map((n) => (byName[n] ?? 0).toLocaleString('en')).join(' | ')} | ${ratio.toFixed(2)} |`)
}
process.stdout.write(`${lines.join('\n')}\n`)
if (values.json) process.stdout.write(`${JSON.stringify({ runs, keys: N, valueBytes: value.length, results })}\n`)
