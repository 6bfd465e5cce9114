// `npm run chaos [-- --json] [--records N] [--workers W] [--kills K] [--partitions P]`
// Runs W worker processes of the chaos topology on a real broker, feeds a counted stream, SIGKILLs workers
// at random and restarts them, then reads every output with read_committed and checks: no duplicate, no
// loss, exact per-key state, every timer fired once unless cancelled. Prints, last, one JSON line.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

import { createAdmin, createProducer } from '../kafka/index.ts'
import { ChaosTracker } from '../test/helpers/chaos-check.ts'
import type { ChaosReport } from '../test/helpers/chaos-check.ts'
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
  },
})
const records = Number(values.records)
const workerCount = Number(values.workers)
const kills = Number(values.kills)
const partitions = Number(values.partitions)
const rate = Number(values.rate)
const progress = createProgress('chaos')
const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function main(): Promise<ChaosReport & { kills: number; restarts: number; workers: number; partitions: number; seconds: number }> {
  const infra = await provideInfrastructure({ redis: false, progress })
  process.env.KAFKA_BOOTSTRAP_SERVERS = infra.env.KAFKA_BOOTSTRAP_SERVERS
  const brokers = infra.kafka.brokers
  const started = performance.now()
  const run = `${Date.now()}`
  const input = `chaos-${run}.input`
  const output = `chaos-${run}.output`
  const applicationId = `weir-chaos-${run}`
  const base = await mkdtemp(join(tmpdir(), 'weir-chaos-'))
  const admin = createAdmin({ brokers })
  await admin.createTopics([
    { name: input, partitions },
    { name: output, partitions },
  ])
  const env = { WEIR_CHAOS_INPUT: input, WEIR_CHAOS_OUTPUT: output, WEIR_CHAOS_TIMER_MIN_MS: '200', WEIR_CHAOS_TIMER_MAX_MS: '3000' }
  const slots: WorkerProcess[] = []
  const start = (i: number) => {
    slots[i] = spawnWorker({
      name: `w${i}`,
      module: resolve(ROOT, 'test/fixtures/chaos-topology.ts'),
      brokers,
      stateDir: join(base, `w${i}`),
      applicationId,
      env,
    })
  }
  let killed = 0
  let restarts = 0
  try {
    for (let i = 0; i < workerCount; i++) start(i)
    progress.step(`${workerCount} workers starting on ${partitions} partitions`)
    await waitForAssignment(slots, partitions, 90_000).catch((error: unknown) => {
      for (const worker of slots) process.stderr.write(`--- ${worker.name} (last log lines)\n${worker.logs().split('\n').slice(-15).join('\n')}\n`)
      throw error
    })
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
    const gap = Math.max(1500, (feedSeconds * 1000) / (kills + 1))
    while (killed < kills) {
      await sleep(random(gap / 2, gap))
      const i = random(0, workerCount)
      const victim = slots[i] as WorkerProcess
      await victim.kill('SIGKILL')
      killed++
      progress.step(`SIGKILL ${victim.name} (${killed}/${kills}); ${seq}/${records} records fed`)
      await sleep(random(300, 2000))
      start(i)
      restarts++
    }
    await feeding
    await producer.close()
    progress.step(`all ${records} records fed; waiting for every output and timer`)
    await waitForAssignment(slots, partitions, 120_000)
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
    return { ...report, kills: killed, restarts, workers: workerCount, partitions, seconds: Math.round((performance.now() - started) / 1000) }
  } finally {
    for (const worker of slots) await worker?.kill('SIGTERM')
    await admin.deleteTopics([input, output]).catch(() => {})
    await admin.close()
    await rm(base, { recursive: true, force: true })
    await infra.stop()
  }
}

main().then(
  (report) => {
    const ok = report.duplicates === 0 && report.lost === 0 && report.timersDuplicated === 0 && report.wrongCounts === 0
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
