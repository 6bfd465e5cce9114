// Bounded shutdown of worker processes: SIGTERM with the broker gone exits within the shutdown deadline (code 3,
// naming the tasks whose work was not committed); with the broker up a stop commits, leaves and exits 0.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, test } from 'node:test'

import { createAdmin, createProducer } from '../../kafka/index.ts'
import { brokers, closeAdmin, consume, createTopics, produce, uniqueName } from '../helpers/kafka.ts'
import { startPrivateBroker } from '../helpers/private-broker.ts'
import { waitFor } from '../helpers/wait.ts'
import { spawnWorker, waitForAssignment } from '../helpers/workers.ts'
import type { WorkerProcess } from '../helpers/workers.ts'

after(closeAdmin)

const ROOT = resolve(import.meta.dirname, '../..')
const MODULE = resolve(ROOT, 'test/fixtures/chaos-topology.ts')

/** Records processed, committed or not (the tests commit nothing before the stop). */
async function processed(worker: WorkerProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${await worker.port}/metrics`)).text()
  const metric = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? 0)
  return metric('weir_records_processed_total') + metric('weir_records_uncommitted')
}

/** Resolves with the exit code, or fails (with the worker's log) if the process is still running after `ms`. */
async function exitWithin(worker: WorkerProcess, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`worker still running ${ms} ms after SIGTERM\n${worker.logs().slice(-4000)}`)), ms)
  })
  try {
    return await Promise.race([worker.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

test('--shutdown-timeout-ms and --instance-id are validated with the other settings', () => {
  const result = spawnSync(process.execPath, [resolve(ROOT, 'worker/cli.ts'), 'worker', MODULE, '--shutdown-timeout-ms', '0', '--instance-id', 'pod 1'], {
    encoding: 'utf8',
    env: { ...process.env, WEIR_SHUTDOWN_TIMEOUT_MS: '', WEIR_INSTANCE_ID: '' },
  })
  assert.equal(result.status, 2, result.stderr)
  assert.match(result.stderr, /WEIR_ERR_INVALID_OPTIONS/)
  assert.match(result.stderr, /--shutdown-timeout-ms must be an integer >= 1, got "0"/)
  assert.match(result.stderr, /--instance-id may use letters, digits/)
})

test('SIGTERM with the broker gone: the worker exits within its shutdown deadline, code 3, naming the work not committed', async (t) => {
  const broker = await startPrivateBroker()
  const base = await mkdtemp(join(tmpdir(), 'weir-shutdown-'))
  t.after(async () => {
    await broker.stop()
    await rm(base, { recursive: true, force: true })
  })
  const input = uniqueName('sd-in')
  const output = uniqueName('sd-out')
  const admin = createAdmin({ brokers: broker.brokers })
  await admin.createTopics([{ name: input, partitions: 2 }, { name: output, partitions: 2 }])
  await admin.close()
  const applicationId = uniqueName('shutdown')
  const running = spawnWorker({
    name: 'w',
    module: MODULE,
    brokers: broker.brokers,
    stateDir: join(base, 'w'),
    applicationId,
    // Nothing commits before the stop: whatever the worker processed is in flight when the broker dies.
    extraArgs: ['--shutdown-timeout-ms', '5000', '--commit-interval-ms', '600000', '--commit-when-idle', 'false'],
    env: { WEIR_CHAOS_INPUT: input, WEIR_CHAOS_OUTPUT: output },
  })
  t.after(() => running.kill('SIGKILL'))
  await waitForAssignment([running], 2).catch((e: unknown) => assert.fail(`${String(e)}\n${running.logs()}`))
  const producer = createProducer({ brokers: broker.brokers })
  await producer.send(Array.from({ length: 20 }, (_, seq) => ({ topic: input, partition: seq % 2, key: `k${seq}`, value: JSON.stringify({ seq }) })))
  await producer.close()
  await waitFor(async () => (await processed(running)) >= 20, { timeoutMs: 60_000, what: 'the worker to process 20 records' })

  await broker.kill()
  running.child.kill('SIGTERM')
  // The deadline is 5 s; the slack covers a loaded machine (the assertion is that it exits at all, by itself).
  const code = await exitWithin(running, 60_000)
  const logs = running.logs()
  assert.equal(code, 3, logs.slice(-4000))
  assert.match(logs, /WEIR_ERR_SHUTDOWN_INCOMPLETE/)
  assert.match(logs, /shutdown deadline|final commit failed/)
  for (const partition of [0, 1]) {
    assert.match(logs, new RegExp(`task ${applicationId}-${partition} \\(partition ${partition}, processed up to ${input}@10\\)`), 'each task named with what it processed')
  }
  assert.match(logs, /redoes that work/)
})

test('SIGTERM with the broker up: the worker commits, leaves the group and exits 0', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'sd-up-in', partitions: 2 }, { prefix: 'sd-up-out', partitions: 2 })
  assert.ok(input && output)
  const base = await mkdtemp(join(tmpdir(), 'weir-shutdown-'))
  t.after(() => rm(base, { recursive: true, force: true }))
  const applicationId = uniqueName('shutdown-up')
  const running = spawnWorker({
    name: 'w',
    module: MODULE,
    brokers: brokers(),
    stateDir: join(base, 'w'),
    applicationId,
    // Only the stop commits: exit 0 means the final commit made it.
    extraArgs: ['--shutdown-timeout-ms', '60000', '--commit-interval-ms', '600000', '--commit-when-idle', 'false'],
    env: { WEIR_CHAOS_INPUT: input, WEIR_CHAOS_OUTPUT: output },
  })
  t.after(() => running.kill('SIGKILL'))
  await waitForAssignment([running], 2).catch((e: unknown) => assert.fail(`${String(e)}\n${running.logs()}`))
  await produce(Array.from({ length: 10 }, (_, seq) => ({ topic: input, partition: seq % 2, key: `k${seq}`, value: JSON.stringify({ seq }) })))
  await waitFor(async () => (await processed(running)) >= 10, { timeoutMs: 60_000, what: 'the worker to process 10 records' })
  running.child.kill('SIGTERM')
  assert.equal(await exitWithin(running, 120_000), 0, running.logs().slice(-4000))
  assert.doesNotMatch(running.logs(), /WEIR_ERR_SHUTDOWN_INCOMPLETE/)
  const records = await consume(output, { until: (_r, all) => all.filter((r) => r.value?.includes('"processed"')).length >= 10, timeoutMs: 30_000 })
  assert.equal(records.filter((r) => r.value?.includes('"processed"')).length, 10, 'the stop committed what was processed')
})

test('static membership (--instance-id): a worker stopped and started again within the session timeout gets its partitions back, the other is not rebalanced', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'sd-static-in', partitions: 4 }, { prefix: 'sd-static-out', partitions: 4 })
  assert.ok(input && output)
  const base = await mkdtemp(join(tmpdir(), 'weir-static-'))
  const workers: WorkerProcess[] = []
  t.after(async () => {
    for (const w of workers) await w.kill('SIGKILL')
    await rm(base, { recursive: true, force: true })
  })
  const applicationId = uniqueName('static')
  const start = (name: string) => {
    const worker = spawnWorker({
      name,
      module: MODULE,
      brokers: brokers(),
      stateDir: join(base, name),
      applicationId,
      // The restart below must happen within the session timeout, however loaded the machine is.
      extraArgs: ['--instance-id', `${applicationId}-${name}`, '--session-timeout-ms', '45000'],
      env: { WEIR_CHAOS_INPUT: input, WEIR_CHAOS_OUTPUT: output },
    })
    workers.push(worker)
    return worker
  }
  const a = start('a')
  await waitForAssignment([a], 4).catch((e: unknown) => assert.fail(`${String(e)}\n${a.logs()}`))
  const b = start('b')
  const before = await waitForAssignment([a, b], 4).catch((e: unknown) => assert.fail(`${String(e)}\n${a.logs()}\n${b.logs()}`))
  assert.equal(before.get('b')?.length, 2)
  const bEvents = () => (b.logs().match(/"msg":"task (assigned|revoked)"/g) ?? []).length
  const settled = bEvents()

  a.child.kill('SIGTERM')
  assert.equal(await exitWithin(a, 120_000), 0, a.logs().slice(-4000))
  // A dynamic member would have left the group: b would take a's partitions at its next heartbeat (every 9 s
  // here). Watched for a while (this can only miss a regression on a slow machine, never fail a correct build).
  const watchUntil = Date.now() + 20_000
  while (Date.now() < watchUntil) {
    assert.deepEqual((await b.ready()).partitions, before.get('b'), 'b does not take over the stopped static member\'s partitions')
    await new Promise((r) => setTimeout(r, 250))
  }
  const again = start('a')
  const after = await waitForAssignment([again, b], 4).catch((e: unknown) => assert.fail(`${String(e)}\n${again.logs()}\n${b.logs()}`))
  assert.deepEqual(after, before, 'the restarted worker has its partitions again')
  assert.equal(bEvents(), settled, `the other worker kept its tasks throughout:\n${b.logs().slice(-3000)}`)
})
