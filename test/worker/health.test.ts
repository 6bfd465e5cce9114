// The worker's HTTP endpoints, on a real `weir worker` process: /health (alive), /ready (serving every
// assigned partition; a failing or stopped task makes it 503 and says which partition and why), /metrics
// (Prometheus text: committed counters, failing and stopped tasks), and the broker's reason in the log.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import type { Readiness } from '../../worker/worker.ts'
import { spawnWorker } from '../helpers/workers.ts'
import type { WorkerProcess } from '../helpers/workers.ts'
import { brokers, closeAdmin, consume, createTopics, produce, text, uniqueName } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'

after(closeAdmin)

const MODULE = resolve(import.meta.dirname, '../fixtures/oversized-output-topology.ts')

async function start(t: TestContext, input: string, output: string, extraArgs: string[] = []): Promise<WorkerProcess> {
  const stateDir = await mkdtemp(join(tmpdir(), 'weir-health-'))
  const worker = spawnWorker({
    name: 'health',
    module: MODULE,
    brokers: brokers(),
    stateDir,
    applicationId: uniqueName('health'),
    env: { WEIR_OVERSIZED_INPUT: input, WEIR_OVERSIZED_OUTPUT: output },
    extraArgs,
  })
  t.after(async () => {
    await worker.kill('SIGTERM')
    await rm(stateDir, { recursive: true, force: true })
  })
  return worker
}

const get = async (worker: WorkerProcess, path: string) => {
  const response = await fetch(`http://127.0.0.1:${await worker.port}${path}`)
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() }
}

/** The value of a sample in Prometheus text (`name` or `name{labels}`), undefined when absent. */
const sample = (metrics: string, name: string): number | undefined => {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  if (line === undefined) return undefined
  return Number(line.slice(line.lastIndexOf(' ') + 1))
}

test('a healthy worker: /health 200, /ready 200 with its partitions, /metrics counts committed records, unknown paths 404', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'health-in', partitions: 2 }, { prefix: 'health-out', partitions: 2 })
  assert.ok(input && output)
  const worker = await start(t, input, output)
  const ready = await waitFor(async () => {
    const r = await get(worker, '/ready').catch(() => undefined)
    return r?.status === 200 ? r : undefined
  }, { what: 'the worker ready', timeoutMs: 60_000 })
  assert.match(ready.type, /application\/json/)
  const status = JSON.parse(ready.body) as Record<string, unknown>
  assert.deepEqual(status, { ready: true, state: 'running', tasks: 2, restoring: 0, partitions: [0, 1], assigned: [0, 1], failing: [] })
  const health = await get(worker, '/health')
  assert.equal(health.status, 200)
  assert.deepEqual(JSON.parse(health.body), { status: 'running' })
  assert.equal((await get(worker, '/nope')).status, 404)

  await produce([0, 1, 2].map((i) => ({ topic: input, key: `k${i}`, value: `v${i}` })))
  await consume(output, { count: 3, timeoutMs: 30_000 })
  const metrics = await waitFor(async () => {
    const m = (await get(worker, '/metrics')).body
    return sample(m, 'weir_records_processed_total') === 3 ? m : undefined
  }, { what: 'three committed records counted' })
  assert.match(metrics, /^# TYPE weir_records_processed_total counter$/m)
  assert.match(metrics, /application_id="health-/)
  assert.equal(sample(metrics, 'weir_records_produced_total'), 3)
  assert.equal(sample(metrics, 'weir_tasks'), 2)
  assert.equal(sample(metrics, 'weir_tasks_failing'), 0)
  assert.equal(sample(metrics, 'weir_tasks_stopped'), 0)
  assert.ok((sample(metrics, 'weir_commits_total') ?? 0) >= 1)
  assert.equal(sample(metrics, 'weir_commits_failed_total'), 0)
  assert.ok(sample(metrics, 'process_cpu_user_seconds_total') !== undefined, 'the default process metrics are there')
})

test('a stopped task makes /ready 503 with the partition and the reason; /metrics and the log say so; /health stays 200', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'health-stop-in', partitions: 2 }, { prefix: 'health-stop-out', partitions: 2 })
  assert.ok(input && output)
  await produce([{ topic: input, partition: 0, key: 'a', value: 'huge' }])
  const worker = await start(t, input, output, ['--error-policy', 'fail', '--max-task-failures', '2'])
  const notReady = await waitFor(async () => {
    const r = await get(worker, '/ready').catch(() => undefined)
    if (r === undefined || r.status !== 503) return undefined
    const body = JSON.parse(r.body) as Readiness & { failing: Array<Record<string, unknown>> }
    return body.state === 'running' && body.failing.some((f) => f.state === 'stopped') ? body : undefined
  }, { what: 'a stopped task on /ready', timeoutMs: 60_000 })
  assert.equal(notReady.ready, false)
  assert.deepEqual(notReady.partitions, [1], 'partition 1 is served')
  assert.deepEqual(notReady.assigned, [0, 1])
  const [stopped, ...others] = notReady.failing
  assert.equal(others.length, 0)
  assert.ok(stopped)
  assert.equal(stopped.partition, 0)
  assert.equal(stopped.code, 'WEIR_ERR_TASK_STOPPED')
  assert.equal(stopped.failures, 2)
  assert.match(String(stopped.message), /MESSAGE_TOO_LARGE \(10\)/)
  assert.deepEqual(stopped.offsets, { [input]: '0' })
  assert.deepEqual(stopped.record, { topic: input, offset: '0' })
  assert.equal((await get(worker, '/health')).status, 200, 'alive: the other partitions are served')
  await produce([{ topic: input, partition: 1, key: 'b', value: 'other' }])
  assert.deepEqual((await consume(output, { count: 1, timeoutMs: 30_000 })).map(text), ['b=other'])

  // Counted when committed: the record on partition 1, never the one whose transactions were refused.
  const metrics = await waitFor(async () => {
    const m = (await get(worker, '/metrics')).body
    return sample(m, 'weir_records_processed_total') === 1 ? m : undefined
  }, { what: 'the committed record counted' })
  assert.equal(sample(metrics, 'weir_tasks_stopped'), 1)
  assert.equal(sample(metrics, 'weir_tasks_failing'), 0)
  assert.match(metrics, /^weir_task_failures\{partition="0",state="stopped",code="WEIR_ERR_TASK_STOPPED",application_id="[^"]+"\} 2$/m)
  assert.equal(sample(metrics, 'weir_commits_failed_total'), 2)
  // The broker's reason reaches the log (pino JSON lines), not only "Producing messages failed".
  assert.match(worker.logs(), /MESSAGE_TOO_LARGE/)
  assert.match(worker.logs(), /WEIR_ERR_TASK_STOPPED/)
})
