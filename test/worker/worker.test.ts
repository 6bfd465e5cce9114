// Worker processes on the real broker: configuration errors, partitions moving between two workers,
// and a SIGKILLed worker's partitions taken over with state restored from the changelog.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, test } from 'node:test'

import { ChaosTracker } from '../helpers/chaos-check.ts'
import { admin, brokers, closeAdmin, consume, createTopics, produce, readAll, uniqueName } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { spawnWorker, waitForAssignment } from '../helpers/workers.ts'
import type { WorkerProcess } from '../helpers/workers.ts'

after(closeAdmin)

const ROOT = resolve(import.meta.dirname, '../..')
const MODULE = resolve(ROOT, 'test/fixtures/chaos-topology.ts')

test('invalid configuration exits with code 2 and lists every problem', () => {
  const result = spawnSync(process.execPath, [resolve(ROOT, 'worker/cli.ts'), 'worker', '--commit-interval-ms', 'soon', '--error-policy', 'ignore', '--commit-when-idle', 'maybe'], {
    encoding: 'utf8',
    env: { ...process.env, KAFKA_BOOTSTRAP_SERVERS: 'not a broker' },
  })
  assert.equal(result.status, 2)
  assert.match(result.stderr, /WEIR_ERR_INVALID_OPTIONS/)
  assert.match(result.stderr, /topology module is missing/)
  assert.match(result.stderr, /--commit-interval-ms must be an integer/)
  assert.match(result.stderr, /--error-policy must be dead-letter, skip or fail/)
  assert.match(result.stderr, /--commit-when-idle must be true or false, got "maybe"/)
  assert.match(result.stderr, /broker "not a broker" is not host:port/)
})

test('partitions move between two worker processes, and a SIGKILLed worker is taken over', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'wk-in', partitions: 4 }, { prefix: 'wk-out', partitions: 4 })
  assert.ok(input && output)
  const applicationId = uniqueName('workers')
  const base = await mkdtemp(join(tmpdir(), 'weir-workers-'))
  const workers: WorkerProcess[] = []
  t.after(async () => {
    for (const w of workers) await w.kill('SIGKILL')
    await rm(base, { recursive: true, force: true })
  })
  const start = (name: string) => {
    const worker = spawnWorker({
      name,
      module: MODULE,
      brokers: brokers(),
      stateDir: join(base, name),
      applicationId,
      env: { WEIR_CHAOS_INPUT: input, WEIR_CHAOS_OUTPUT: output, WEIR_CHAOS_TIMER_MIN_MS: '100', WEIR_CHAOS_TIMER_MAX_MS: '400' },
    })
    workers.push(worker)
    return worker
  }
  let seq = 0
  const feed = (n: number) => produce(Array.from({ length: n }, () => ({ topic: input, key: `key-${seq % 13}`, value: JSON.stringify({ seq: seq++ }) })))

  const a = start('a')
  await waitForAssignment([a], 4).catch((e: unknown) => assert.fail(`${String(e)}\n${a.logs()}`))
  await feed(150)
  const b = start('b')
  const shared = await waitForAssignment([a, b], 4).catch((e: unknown) => assert.fail(`${String(e)}\n${a.logs()}\n${b.logs()}`))
  assert.equal(shared.get('a')?.length, 2, 'the second worker takes half of the partitions')
  assert.equal(shared.get('b')?.length, 2)
  await feed(150)
  assert.equal(await a.kill('SIGKILL'), null)
  await waitForAssignment([b], 4, 60_000).catch((e: unknown) => assert.fail(`${String(e)}\n${b.logs()}`))
  await feed(150)

  const tracker = new ChaosTracker(seq)
  await consume(output, {
    until: (record) => {
      // Stamped when this reader saw it: a timer visible before its due time counts as early.
      tracker.add(record, Date.now())
      return tracker.complete()
    },
    timeoutMs: 60_000,
  }).catch((e: unknown) => assert.fail(`${String(e)}\n${JSON.stringify(tracker.report())}\n${b.logs().slice(-3000)}`))
  assert.equal(tracker.report().timersEarly, 0, 'no timer visible before its due time')
  // The set is complete at its first record, but a duplicate may follow on any partition. Once the group has
  // committed every input (nothing left to process; every timer fired or cancelled), read every partition to
  // its end offsets again and count all of it.
  const inputEnds = await admin().endOffsets(input)
  await waitFor(
    async () => {
      const committed = new Map((await admin().committedOffsets(applicationId, input)).map((o) => [o.partition, o.offset]))
      return inputEnds.every((end) => (committed.get(end.partition) ?? -1n) >= end.offset)
    },
    { timeoutMs: 60_000, what: 'the worker group to commit every input' },
  ).catch((e: unknown) => assert.fail(`${String(e)}\n${b.logs().slice(-3000)}`))
  const final = new ChaosTracker(seq)
  for (const record of await readAll(output)) final.add(record)
  const report = final.report()
  assert.ok(report.outputs >= tracker.report().outputs, 'the final read covers at least what the first one saw')
  assert.equal(report.lost, 0)
  assert.equal(report.duplicates, 0)
  assert.equal(report.wrongCounts, 0, 'per-key counts continue across the takeover (state restored)')
  assert.equal(report.outputsUnknown, 0)
  assert.equal(report.timersNotSet, 0)
  assert.equal(report.timerEventsDuplicated, 0)
  assert.equal(report.timersDuplicated, 0)
  assert.equal(report.timersMissing, 0)
  assert.equal(report.timersFiredAfterCancel, 0)
  assert.ok(report.timersSet > 0 && report.timersFired === report.timersSet - report.timersCancelled)

  await b.kill('SIGTERM')
  assert.equal(await b.exited, 0, `a SIGTERMed worker stops cleanly\n${b.logs().slice(-2000)}`)
})
