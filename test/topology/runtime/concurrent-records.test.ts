// Records of one task processed concurrently (maxInFlight) on the real broker: handlers of different keys overlap
// (counted, never timed), the bound holds, one key stays in order with its state, errors keep their policy, a
// commit never covers a record still in flight (a worker SIGKILLed with records in flight, restarted: every
// output exactly once), and a task whose commit fails drops and redoes its records in flight.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import { isWeirError } from '../../../core/errors.ts'
import { createProducer } from '../../../kafka/index.ts'
import { openStore } from '../../../state/open-store.ts'
import { defineTopology } from '../../../topology/define.ts'
import type { ProcessorContext } from '../../../topology/processor.ts'
import type { StreamRecord } from '../../../topology/record.ts'
import type { StreamRuntimeOptions } from '../../../topology/runtime/runtime-options.ts'
import { createStreamRuntime } from '../../../topology/runtime/stream-runtime.ts'
import { checkChaosOutputs } from '../../helpers/chaos-check.ts'
import { brokers, closeAdmin, consume, createTopics, produce, readAll, text, uniqueName } from '../../helpers/kafka.ts'
import { waitFor } from '../../helpers/wait.ts'
import { spawnWorker, waitForAssignment } from '../../helpers/workers.ts'

after(closeAdmin)

const ROOT = resolve(import.meta.dirname, '../../..')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Counts handlers running at once; each input `<n>` (or `poison`) awaits n ms before it reads its key's count. */
function overlapTopology(input: string, output: string) {
  const overlap = { active: 0, max: 0, started: 0 }
  const topology = defineTopology({
    sources: { input: { topic: input, keySerde: 'string', valueSerde: 'string' } },
    stores: { counts: { keySerde: 'string', valueSerde: 'json' } },
    processors: {
      count: {
        from: ['input'],
        stores: ['counts'],
        use: () => {
          let context: ProcessorContext
          return {
            init(c) {
              context = c
            },
            async process(record: StreamRecord<string, string>) {
              overlap.started++
              overlap.active++
              overlap.max = Math.max(overlap.max, overlap.active)
              try {
                await sleep(record.value === 'poison' ? 5 : Number(record.value))
                if (record.value === 'poison') throw new Error('poison record')
                const store = context.store<string, number>('counts')
                const next = ((await store.get(record.key)) ?? 0) + 1
                await store.put(record.key, next)
                await context.forward(record.withValue(`${record.key}=${next}`))
              } finally {
                overlap.active--
              }
            },
          }
        },
      },
    },
    sinks: { out: { from: ['count'], topic: output, keySerde: 'string', valueSerde: 'string' } },
  })
  return { topology, overlap }
}

async function startRuntime(t: TestContext, options: Partial<StreamRuntimeOptions> & Pick<StreamRuntimeOptions, 'topology' | 'applicationId'>) {
  const stateDir = await mkdtemp(join(tmpdir(), 'weir-conc-'))
  const runtime = createStreamRuntime({ brokers: brokers(), stateDir, openStore, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, ...options })
  t.after(async () => {
    await runtime.stop()
    await rm(stateDir, { recursive: true, force: true })
  })
  await runtime.start()
  return runtime
}

/** Per key, the outputs `key=n` must be 1, 2, 3, ... in order, each once. */
function assertCountsInOrder(outputs: readonly string[], expected: ReadonlyMap<string, number>): void {
  const last = new Map<string, number>()
  for (const value of outputs) {
    const [key, n] = value.split('=') as [string, string]
    assert.equal(Number(n), (last.get(key) ?? 0) + 1, `counts per key go up by one: ${value} after ${last.get(key) ?? 0}`)
    last.set(key, Number(n))
  }
  assert.deepEqual([...last].sort(), [...expected].sort())
}

test('maxInFlight is validated: an integer from 1 to 10000 (WEIR_ERR_INVALID_OPTIONS), also as the worker flag', () => {
  const { topology } = overlapTopology('in', 'out')
  for (const maxInFlight of [0, 1.5, 10_001, Number.NaN]) {
    assert.throws(
      () => createStreamRuntime({ applicationId: 'a', topology, brokers: ['127.0.0.1:1'], stateDir: '/tmp/x', openStore, maxInFlight }),
      (error: unknown) => isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS') && /maxInFlight must be an integer from 1 to 10000/.test(error.message),
    )
  }
  const result = spawnSync(process.execPath, [resolve(ROOT, 'worker/cli.ts'), 'worker', resolve(ROOT, 'test/fixtures/chaos-topology.ts'), '--max-in-flight', '0'], {
    encoding: 'utf8',
    env: { ...process.env, WEIR_MAX_IN_FLIGHT: '' },
  })
  assert.equal(result.status, 2, result.stderr)
  assert.match(result.stderr, /WEIR_ERR_INVALID_OPTIONS/)
  assert.match(result.stderr, /--max-in-flight must be an integer >= 1, got "0"/)
})

test('records of different keys overlap up to maxInFlight per task; one key stays in order with its state; a failing record is dead-lettered', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'cc-in', partitions: 1 }, { prefix: 'cc-out', partitions: 1 })
  assert.ok(input && output)
  // 16 keys of 6 records; each handler awaits 30 ms, so in one task they can only overlap if the loop starts
  // records while others wait. Key k-3's third record is poison.
  const keys = Array.from({ length: 16 }, (_, i) => `k-${i}`)
  const records = Array.from({ length: 96 }, (_, i) => {
    const key = keys[i % keys.length] as string
    return { topic: input, key, value: key === 'k-3' && i >= 32 && i < 48 ? 'poison' : '30' }
  })
  await produce(records)
  const { topology, overlap } = overlapTopology(input, output)
  const runtime = await startRuntime(t, { applicationId: uniqueName('conc'), topology, maxInFlight: 8 })
  const outputs = (await consume(output, { count: 95, timeoutMs: 60_000 })).map(text)
  const expected = new Map(keys.map((k) => [k, k === 'k-3' ? 5 : 6]))
  assertCountsInOrder(outputs, expected)
  const [dead] = await consume(`${input}.dlq`, { count: 1, timeoutMs: 30_000 })
  assert.equal(dead?.headers.get('weir.error.code')?.toString(), 'WEIR_ERR_PROCESSING')
  assert.equal(dead?.headers.get('weir.origin.offset')?.toString(), '35')
  assert.equal(overlap.max, 8, `at most 8 handlers of the one task ran at once, and 8 did (max ${overlap.max})`)
  await waitFor(async () => (await runtime.metrics()).processed === 95, { what: 'all records committed', timeoutMs: 30_000 })
  const metrics = await runtime.metrics()
  assert.equal(metrics.deadLettered, 1)
  assert.equal(metrics.uncommitted, 0)
  await runtime.stop()
  assert.equal((await readAll(output)).length, 95, 'nothing more after the stop')
})

test('maxInFlight 1 (the default) processes one record at a time', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'cs-in', partitions: 1 }, { prefix: 'cs-out', partitions: 1 })
  assert.ok(input && output)
  await produce(Array.from({ length: 12 }, (_, i) => ({ topic: input, key: `k-${i}`, value: '5' })))
  const { topology, overlap } = overlapTopology(input, output)
  await startRuntime(t, { applicationId: uniqueName('serial'), topology })
  await consume(output, { count: 12, timeoutMs: 30_000 })
  assert.equal(overlap.max, 1)
})

test('a commit that fails with records in flight drops them with the rest; the next owner redoes everything exactly once', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'cf-in', partitions: 1 }, { prefix: 'cf-out', partitions: 1 })
  assert.ok(input && output)
  const applicationId = uniqueName('conc-fenced')
  const keys = Array.from({ length: 10 }, (_, i) => `k-${i}`)
  await produce(Array.from({ length: 20 }, (_, i) => ({ topic: input, key: keys[i % 10] as string, value: '20' })))
  const first = overlapTopology(input, output)
  const runtime = await startRuntime(t, { applicationId, topology: first.topology, maxInFlight: 8 })
  await consume(output, { count: 20, timeoutMs: 30_000 })
  // Slow records in flight, then the task's producer is fenced (another producer of its transactional id): the
  // commit that follows fails, and the task is opened again from Kafka.
  await produce(Array.from({ length: 20 }, (_, i) => ({ topic: input, key: keys[i % 10] as string, value: '300' })))
  await waitFor(() => first.overlap.active >= 4 || undefined, { what: 'records in flight', timeoutMs: 30_000 })
  const usurper = createProducer({ brokers: brokers(), transactionalId: `${applicationId}-0` })
  try {
    await usurper.beginTransaction()
  } finally {
    await usurper.close()
  }
  await waitFor(async () => ((await runtime.metrics()).failedCommits >= 1 ? true : undefined), { what: 'the fenced commit', timeoutMs: 30_000 })
  const outputs = await consume(output, { count: 40, timeoutMs: 60_000 })
  assertCountsInOrder(outputs.map(text), new Map(keys.map((k) => [k, 4])))
  await runtime.stop()
  assert.equal((await readAll(output)).length, 40, 'nothing more after the stop')
})

test('a rebalance with records in flight: the partition that leaves drains and drops them, its next owner redoes them exactly once', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'cr-in', partitions: 2 }, { prefix: 'cr-out', partitions: 2 })
  assert.ok(input && output)
  const applicationId = uniqueName('conc-rebalance')
  const keys = Array.from({ length: 20 }, (_, i) => `k-${i}`)
  // 600 records of 200 ms, 8 at a time per task: about 7 s of work, so the rebalance comes in the middle of it.
  await produce(Array.from({ length: 600 }, (_, i) => ({ topic: input, key: keys[i % 20] as string, value: '200' })))
  const first = overlapTopology(input, output)
  const a = await startRuntime(t, { applicationId, topology: first.topology, maxInFlight: 8 })
  await waitFor(() => first.overlap.active >= 8 || undefined, { what: 'records in flight in both tasks', timeoutMs: 30_000 })
  const b = await startRuntime(t, { applicationId, topology: overlapTopology(input, output).topology, maxInFlight: 8 })
  await waitFor(() => (a.partitions().length === 1 && b.partitions().length === 1) || undefined, { what: 'one partition each', timeoutMs: 60_000 })
  assert.ok(first.overlap.started < 600, `the rebalance came before the first worker had started every record (${first.overlap.started})`)
  const outputs = await consume(output, { count: 600, timeoutMs: 90_000 })
  assertCountsInOrder(outputs.map(text), new Map(keys.map((k) => [k, 30])))
  await Promise.all([a.stop(), b.stop()])
  assert.equal((await readAll(output)).length, 600, 'nothing more after the stop')
})

test('a worker SIGKILLed with records in flight and restarted: every input processed exactly once, per-key counts exact', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'ck-in', partitions: 2 }, { prefix: 'ck-out', partitions: 2 })
  assert.ok(input && output)
  const applicationId = uniqueName('conc-kill')
  const stateDir = await mkdtemp(join(tmpdir(), 'weir-conc-kill-'))
  t.after(() => rm(stateDir, { recursive: true, force: true }))
  const records = 1200
  // Each input awaits 0..300 ms before its count: 16 in flight per task take about 6 s for the backlog, so the kill
  // finds records in flight, and records finished and not yet committed.
  const spawn = (name: string) =>
    spawnWorker({
      name,
      module: resolve(ROOT, 'test/fixtures/chaos-topology.ts'),
      brokers: brokers(),
      stateDir,
      applicationId,
      env: { WEIR_CHAOS_INPUT: input, WEIR_CHAOS_OUTPUT: output, WEIR_CHAOS_IO_MAX_MS: '300', WEIR_CHAOS_TIMER_MIN_MS: '100', WEIR_CHAOS_TIMER_MAX_MS: '800' },
      extraArgs: ['--max-in-flight', '16', '--instance-id', name],
    })
  let worker = spawn('w0')
  t.after(() => worker.kill('SIGKILL'))
  await waitForAssignment([worker], 2)
  await produce(Array.from({ length: records }, (_, seq) => ({ topic: input, key: `key-${seq % 23}`, value: JSON.stringify({ seq }) })))
  // Killed once some of the work is committed and while much is not.
  await waitFor(async () => ((await readAll(output)).length >= 200 ? true : undefined), { what: 'some committed outputs', timeoutMs: 60_000, intervalMs: 50 })
  await worker.kill('SIGKILL')
  const beforeRestart = checkChaosOutputs(records, await readAll(output))
  worker = spawn('w0')
  await waitForAssignment([worker], 2)
  const done = await waitFor(
    async () => {
      const report = checkChaosOutputs(records, await readAll(output))
      return report.processed >= records && report.timersMissing === 0 && report.timersNotSet === 0 ? report : undefined
    },
    { what: 'every input processed and every timer settled', timeoutMs: 120_000, intervalMs: 500 },
  )
  await worker.kill('SIGTERM')
  const report = checkChaosOutputs(records, await readAll(output))
  assert.ok(beforeRestart.processed < records / 2, `the kill left work to redo (${beforeRestart.processed} of ${records} inputs committed before it)`)
  assert.ok(done.processed >= records)
  assert.equal(report.duplicates, 0, JSON.stringify(report))
  assert.equal(report.lost, 0, JSON.stringify(report))
  assert.equal(report.wrongCounts, 0, JSON.stringify(report))
  assert.equal(report.outputsUnknown, 0, JSON.stringify(report))
  assert.equal(report.timerEventsDuplicated, 0, JSON.stringify(report))
  assert.equal(report.timersDuplicated, 0, JSON.stringify(report))
  assert.equal(report.timersFiredAfterCancel, 0, JSON.stringify(report))
})
