// `npm run bench:transaction [-- options]`: the latency of one exactly-once transaction on this machine's broker,
// weir's Kafka adapter against Kafka's own Java client, measured in the same run on the same broker. This is the
// floor under every command -> result latency of weir (bench:gateway): an outcome is visible to the gateway when
// the worker's transaction commits.
//
// Each system runs --transactions transactions one after another (after --warmup ones not counted), each:
//   send     one record of --value-bytes to partition 0 of each of --topics topics, acknowledged (acks=all;
//            AddPartitionsToTxn first)
//   offsets  one consumer offset for a group in the transaction (AddOffsetsToTxn, TxnOffsetCommit)
//   commit   EndTxn
//   visible  until a read_committed reader sees the transaction's record in the first topic (markers written)
//   total    all of the above
// Nothing else loads the machine. Runs alternate which system goes first; figures are medians over --runs.
//
// Options: --transactions 500 --warmup 50 --topics 8 --value-bytes 200 --runs 3 --skip java --json
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'

import { createAdmin, createGroupMember, createPartitionReader, createProducer } from '../kafka/index.ts'
import { InfraUnavailable, createProgress, provideInfrastructure } from '../scripts/infra/index.ts'
import { buildKafkaStreamsBaseline } from './baselines/kafka-streams.ts'
import { kafkaSecurity } from '../test/helpers/kafka.ts'

const { values } = parseArgs({
  options: {
    transactions: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '50' },
    topics: { type: 'string', default: '8' },
    'value-bytes': { type: 'string', default: '200' },
    runs: { type: 'string', default: '3' },
    skip: { type: 'string', default: '' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})

if (values.help) {
  process.stdout.write(`${(await import('node:fs')).readFileSync(import.meta.filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n')}\n`)
  process.exit(0)
}

const settings = {
  transactions: Number(values.transactions),
  warmup: Number(values.warmup),
  topics: Number(values.topics),
  valueBytes: Number(values['value-bytes']),
  runs: Number(values.runs),
}
const skip = new Set(String(values.skip).split(',').filter(Boolean))
const problems: string[] = []
if (!(Number.isInteger(settings.transactions) && settings.transactions >= 10)) problems.push('--transactions must be an integer >= 10')
if (!(Number.isInteger(settings.warmup) && settings.warmup >= 0)) problems.push('--warmup must be an integer >= 0')
if (!(Number.isInteger(settings.topics) && settings.topics >= 1 && settings.topics <= 100)) problems.push('--topics must be an integer from 1 to 100')
if (!(Number.isInteger(settings.valueBytes) && settings.valueBytes >= 0)) problems.push('--value-bytes must be an integer >= 0')
if (!(Number.isInteger(settings.runs) && settings.runs >= 1)) problems.push('--runs must be an integer >= 1')
for (const s of skip) if (s !== 'java') problems.push(`--skip: unknown ${s} (only java)`)
if (problems.length > 0) {
  process.stderr.write(`bench:transaction: ${problems.join('; ')}\n`)
  process.exit(2)
}

const STEPS = ['send', 'offsets', 'commit', 'visible', 'total'] as const
type Step = (typeof STEPS)[number]
type Percentiles = { p50: number; p90: number; p99: number }
type Summary = Record<Step, Percentiles>

const progress = createProgress('bench:transaction')

function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number) * 100) / 100
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

async function createProbeTopics(brokers: string[], prefix: string): Promise<{ topics: string[]; input: string }> {
  const admin = createAdmin({ ...kafkaSecurity(), brokers })
  try {
    const topics = Array.from({ length: settings.topics }, (_, i) => `${prefix}-t${i}`)
    const input = `${prefix}-in`
    await admin.createTopics([...topics, input].map((name) => ({ name, partitions: 1 })))
    return { topics, input }
  } finally {
    await admin.close()
  }
}

async function probeWeir(brokers: string[], prefix: string): Promise<Summary> {
  const { topics, input } = await createProbeTopics(brokers, prefix)
  const member = createGroupMember({ ...kafkaSecurity(), brokers, groupId: `${prefix}-g`, topics: [input] })
  const producer = createProducer({ ...kafkaSecurity(), brokers, transactionalId: `${prefix}-tx` })
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers, isolation: 'read_committed', maxWaitMs: 500 })
  const samples: Record<Step, number[]> = { send: [], offsets: [], commit: [], visible: [], total: [] }
  const value = Buffer.alloc(settings.valueBytes)
  const watched = topics[0] as string
  try {
    await member.join()
    for (let n = 0; n < settings.warmup + settings.transactions; n++) {
      const t0 = performance.now()
      const tx = await producer.beginTransaction()
      const written = await tx.send(topics.map((topic) => ({ topic, partition: 0, key: Buffer.from(`k${n}`), value })))
      const target = written.find((w) => w.topic === watched)?.offset ?? 0n
      const t1 = performance.now()
      await tx.sendOffsets(member, [{ topic: input, partition: 0, offset: BigInt(n) }])
      const t2 = performance.now()
      await tx.commit()
      const t3 = performance.now()
      for (let seen = false; !seen; ) {
        for (const batch of await reader.fetch([{ topic: watched, partition: 0, offset: target }], { maxWaitMs: 500 })) {
          if (batch.records.some((r) => r.offset >= target)) seen = true
        }
      }
      const t4 = performance.now()
      if (n < settings.warmup) continue
      samples.send.push(t1 - t0)
      samples.offsets.push(t2 - t1)
      samples.commit.push(t3 - t2)
      samples.visible.push(t4 - t3)
      samples.total.push(t4 - t0)
    }
  } finally {
    await producer.close().catch(() => {})
    await reader.close().catch(() => {})
    await member.close().catch(() => {})
  }
  return Object.fromEntries(STEPS.map((s) => [s, percentiles(samples[s])])) as Summary
}

async function probeJava(brokers: string[], prefix: string, classpath: string): Promise<Summary> {
  const { topics, input } = await createProbeTopics(brokers, prefix)
  const args = [
    '-Xms256m', '-Xmx512m', '-cp', classpath, 'dev.weir.bench.TransactionProbe',
    '--bootstrap-servers', brokers.join(','), '--topics', topics.join(','), '--input', input, '--group', `${prefix}-g`,
    '--transactional-id', `${prefix}-tx`, '--transactions', String(settings.transactions), '--warmup', String(settings.warmup),
    '--value-bytes', String(settings.valueBytes),
  ]
  return new Promise((resolve, reject) => {
    const java = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const killOnExit = () => java.kill('SIGKILL')
    process.once('exit', killOnExit)
    let stdout = ''
    let stderr = ''
    java.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    java.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)))
    java.on('error', (error) => reject(new InfraUnavailable(`cannot run java for the Java client probe: ${error.message}`)))
    java.on('close', (code) => {
      process.removeListener('exit', killOnExit)
      const line = stdout.trim().split('\n').at(-1) ?? ''
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`the Java transaction probe exited with ${code}:\n${stderr || stdout}`))
        return
      }
      resolve(JSON.parse(line) as Summary)
    })
  })
}

function medianSummary(runs: Summary[]): Summary {
  return Object.fromEntries(
    STEPS.map((s) => [s, { p50: median(runs.map((r) => r[s].p50)), p90: median(runs.map((r) => r[s].p90)), p99: median(runs.map((r) => r[s].p99)) }]),
  ) as Summary
}

async function main(): Promise<void> {
  const infra = await provideInfrastructure({ redis: false, progress })
  try {
    const brokers = infra.kafka.brokers
    const classpath = skip.has('java') ? undefined : await buildKafkaStreamsBaseline(progress)
    const weirRuns: Summary[] = []
    const javaRuns: Summary[] = []
    const stamp = Date.now().toString(36)
    for (let run = 0; run < settings.runs; run++) {
      const order: Array<'weir' | 'java'> = classpath === undefined ? ['weir'] : run % 2 === 0 ? ['weir', 'java'] : ['java', 'weir']
      for (const system of order) {
        progress.step(`run ${run + 1}/${settings.runs}: ${system}, ${settings.warmup} + ${settings.transactions} transactions over ${settings.topics} partitions`)
        const prefix = `bench-tx-${stamp}-${run}-${system}`
        if (system === 'weir') weirRuns.push(await probeWeir(brokers, prefix))
        else javaRuns.push(await probeJava(brokers, prefix, classpath as string))
        const last = (system === 'weir' ? weirRuns : javaRuns).at(-1) as Summary
        progress.done(`${system}: total p50 ${last.total.p50} ms, p99 ${last.total.p99} ms`)
      }
    }
    const weir = medianSummary(weirRuns)
    const java = javaRuns.length > 0 ? medianSummary(javaRuns) : undefined
    const ratio = (a: number, b: number | undefined) => (b === undefined || b === 0 ? null : Math.round((a / b) * 100) / 100)
    const rows = STEPS.map((s) => `| ${s} | ${weir[s].p50} / ${weir[s].p99} | ${java === undefined ? '-' : `${java[s].p50} / ${java[s].p99}`} |`)
    process.stdout.write(
      [
        `One transaction, ${settings.topics} partitions + 1 offset, median of ${settings.runs} run(s) of ${settings.transactions} (ms, p50 / p99):`,
        '',
        '| step | weir (kafka/ adapter) | Java client |',
        '| --- | ---: | ---: |',
        ...rows,
        '',
        ...(java === undefined ? [] : [`weir / Java client, total: p50 ${ratio(weir.total.p50, java.total.p50)}, p99 ${ratio(weir.total.p99, java.total.p99)}`, '']),
      ].join('\n'),
    )
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({
          bench: 'transaction',
          at: new Date().toISOString(),
          ...settings,
          weir,
          java: java ?? null,
          ratios: { totalP50: ratio(weir.total.p50, java?.total.p50), totalP99: ratio(weir.total.p99, java?.total.p99) },
          runs: { weir: weirRuns.map((r) => r.total), java: javaRuns.map((r) => r.total) },
        })}\n`,
      )
    }
  } finally {
    await infra.stop()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:transaction failed: ${error instanceof InfraUnavailable ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
