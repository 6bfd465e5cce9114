// `npm run bench:transaction [-- options]`: the latency of one exactly-once transaction on this machine's broker,
// weir's Kafka adapter against Kafka's own Java client, measured in the same run on the same broker. This is the
// floor under every command -> result latency of weir (bench:gateway): an outcome is visible to the gateway when
// the worker's transaction commits.
//
// Each system runs --transactions transactions one after another (after --warmup ones not counted), each timed by
// step (send, offsets, commit, visible, total: bench/transaction-probe.ts), --value-bytes to --topics topics.
// Nothing else loads the machine. Runs alternate which system goes first; figures are medians over --runs.
//
// Options: --transactions 500 --warmup 50 --topics 8 --value-bytes 200 --runs 3 --skip java --json
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'

import { InfraUnavailable, createProgress, provideInfrastructure } from '../scripts/infra/index.ts'
import { buildKafkaStreamsBaseline } from './baselines/kafka-streams.ts'
import { STEPS, createProbeTopics, probeWeirTransactions } from './transaction-probe.ts'
import type { TransactionSummary as Summary } from './transaction-probe.ts'

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

const progress = createProgress('bench:transaction')

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

async function probeJava(brokers: string[], prefix: string, classpath: string): Promise<Summary> {
  const { topics, input } = await createProbeTopics(brokers, prefix, settings.topics)
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
        if (system === 'weir') weirRuns.push(await probeWeirTransactions(brokers, prefix, settings))
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
