// A task whose transaction the broker refuses again and again (an output over max.message.bytes): it backs off,
// re-opens committing one record per transaction, and after maxTaskFailures refusals at the same offset applies
// the error policy to the record there (dead letter, skip) or, with `fail`, stops with a coded error. Never an
// endless loop; the broker's reason reaches the error; the other partitions keep being served.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import { defineTopology } from '../../../topology/define.ts'
import type { StreamRuntimeOptions } from '../../../topology/runtime/runtime-options.ts'
import { oversizedTopology } from '../../fixtures/oversized-output-topology.ts'
import { admin, closeAdmin, consume, createTopics, produce, readAll, text, uniqueName } from '../../helpers/kafka.ts'
import { waitFor } from '../../helpers/wait.ts'
import { startTestRuntime } from '../../helpers/runtime.ts'

after(closeAdmin)

async function startRuntime(t: TestContext, overrides: Partial<StreamRuntimeOptions> & Pick<StreamRuntimeOptions, 'topology'>) {
  const { runtime } = await startTestRuntime(t, {
    applicationId: uniqueName('failing'),
    stateDirPrefix: 'weir-failures-',
    maxTaskFailures: 3,
    failureBackoffMs: { min: 50, max: 400 },
    ...overrides,
  })
  return runtime
}

test('a record whose transaction the broker keeps refusing is dead-lettered after maxTaskFailures failures; the partition goes on', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'tf-in', partitions: 2 }, { prefix: 'tf-out', partitions: 2 })
  assert.ok(input && output)
  // The huge one first on partition 0, so every failure is at the same offset.
  await produce([
    { topic: input, partition: 0, key: 'a', value: 'huge' },
    { topic: input, partition: 0, key: 'a', value: 'after' },
    { topic: input, partition: 1, key: 'b', value: 'other' },
  ])
  const runtime = await startRuntime(t, { topology: oversizedTopology(input, output) })
  const outputs = await consume(output, { count: 2, timeoutMs: 60_000 })
  assert.deepEqual(outputs.map(text).sort(), ['a=after', 'b=other'])
  const [dead] = await consume(`${input}.dlq`, { count: 1, timeoutMs: 30_000 })
  assert.ok(dead)
  const header = (name: string) => dead.headers.get(name)?.toString()
  assert.equal(header('weir.error.code'), 'WEIR_ERR_POISON_RECORD')
  assert.equal(header('weir.origin.partition'), '0')
  assert.equal(header('weir.origin.offset'), '0')
  assert.equal(header('weir.processor'), '(commit)')
  assert.equal(header('weir.attempts'), '3', 'the refused transactions that carried it')
  assert.equal(text(dead), 'huge', 'the record itself, not its oversized output')
  assert.match(header('weir.error.message') ?? '', /failed 3 times in a row.*MESSAGE_TOO_LARGE \(10\)/, "the broker's error name and code are in the message")
  const metrics = await runtime.metrics()
  assert.equal(metrics.failedCommits, 3, 'exactly maxTaskFailures failed commits: no endless loop')
  assert.deepEqual(metrics.failures, [], 'nothing failing once the record was dead-lettered and committed')
  assert.equal(metrics.deadLettered, 1)
  assert.equal(metrics.processed, 2, 'only committed work is counted (the refused attempts are not)')
})

test('with the fail policy the task stops with WEIR_ERR_TASK_STOPPED, says why, and is not retried; other partitions are served', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'tf-stop-in', partitions: 2 }, { prefix: 'tf-stop-out', partitions: 2 })
  assert.ok(input && output)
  await produce([{ topic: input, partition: 0, key: 'a', value: 'huge' }])
  const runtime = await startRuntime(t, { topology: oversizedTopology(input, output), errorPolicy: 'fail', maxTaskFailures: 2 })
  // While it fails: reported as failing, with the broker's reason and when it is tried again.
  const failing = await waitFor(async () => (await runtime.metrics()).failures.find((f) => f.state === 'failing'), { what: 'a failing task', timeoutMs: 30_000 })
  assert.equal(failing.partition, 0)
  assert.match(failing.message, /MESSAGE_TOO_LARGE/)
  assert.deepEqual(failing.offsets, { [input]: '0' })
  const stopped = await waitFor(async () => (await runtime.metrics()).failures.find((f) => f.state === 'stopped'), { what: 'a stopped task', timeoutMs: 30_000 })
  assert.equal(stopped.partition, 0)
  assert.equal(stopped.code, 'WEIR_ERR_TASK_STOPPED')
  assert.match(stopped.message, /stopped after 2 failures in a row at .*\[0\]@0 \(error policy fail\).*MESSAGE_TOO_LARGE/)
  assert.deepEqual(stopped.record, { topic: input, offset: '0' })
  assert.equal(runtime.state(), 'running', 'the worker keeps serving its other partitions')
  assert.deepEqual(runtime.partitions(), [1])
  assert.deepEqual((await runtime.metrics()).assigned, [0, 1])
  await produce([{ topic: input, partition: 1, key: 'b', value: 'other' }])
  assert.deepEqual((await consume(output, { count: 1, timeoutMs: 30_000 })).map(text), ['b=other'])
  const failedCommits = (await runtime.metrics()).failedCommits
  assert.equal(failedCommits, 2)
  // A stopped task is not opened again: the count stays where it is while the loop goes on.
  await new Promise((r) => setTimeout(r, 1000))
  assert.equal((await runtime.metrics()).failedCommits, failedCommits)
})

test('with the skip policy the record is skipped and counted after maxTaskFailures failures, without a dead letter', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'tf-skip-in', partitions: 1 }, { prefix: 'tf-skip-out', partitions: 1 })
  assert.ok(input && output)
  await produce([
    { topic: input, key: 'a', value: 'huge' },
    { topic: input, key: 'a', value: 'after' },
  ])
  const runtime = await startRuntime(t, { topology: oversizedTopology(input, output), errorPolicy: 'skip', maxTaskFailures: 2 })
  assert.deepEqual((await consume(output, { count: 1, timeoutMs: 60_000 })).map(text), ['a=after'])
  const metrics = await waitFor(async () => {
    const m = await runtime.metrics()
    return m.skipped === 1 && m.processed === 1 ? m : undefined
  }, { what: 'the skip counted once committed' })
  assert.equal(metrics.failedCommits, 2)
  assert.equal(metrics.deadLettered, 0)
  assert.deepEqual(metrics.failures, [])
})

test("a dead letter is cut to its own topic's max.message.bytes, asked from the broker (a topic setting below the broker's)", async (t) => {
  const [input] = await createTopics(t, { prefix: 'tf-limit-in', partitions: 1 })
  assert.ok(input)
  // The dead-letter topic exists already, with a limit far below the input topic's.
  await admin().createTopics([{ name: `${input}.dlq`, partitions: 1, configs: { 'max.message.bytes': '20000' } }])
  t.after(() => admin().deleteTopics([`${input}.dlq`]).catch(() => {}))
  const throwing = defineTopology({
    sources: { input: { topic: input, keySerde: 'string', valueSerde: 'buffer' } },
    processors: {
      p: {
        from: ['input'],
        use: () => ({
          process() {
            throw new Error('refused')
          },
        }),
      },
    },
  })
  const value = Buffer.alloc(50_000, 7)
  await produce([{ topic: input, key: 'k', value }])
  const runtime = await startRuntime(t, { topology: throwing })
  const [dead] = await consume(`${input}.dlq`, { count: 1, timeoutMs: 30_000 })
  assert.ok(dead)
  assert.equal(dead.headers.get('weir.truncated')?.toString(), 'value')
  assert.equal(dead.headers.get('weir.value.size')?.toString(), '50000')
  const kept = dead.value?.byteLength ?? 0
  assert.ok(kept > 15_000 && kept < 20_000, `${kept} bytes kept`)
  assert.equal((await runtime.metrics()).failedCommits, 0, 'no transaction was refused')
})

for (const maxInFlight of [1, 8]) {
  test(`a refused transaction of several records is retried one record per transaction, so the record to blame is the one dead-lettered (maxInFlight ${maxInFlight})`, async (t) => {
    const [input, output] = await createTopics(t, { prefix: 'tf-iso-in', partitions: 1 }, { prefix: 'tf-iso-out', partitions: 1 })
    assert.ok(input && output)
    await produce(['ok-1', 'ok-2', 'huge', 'ok-3'].map((value) => ({ topic: input, key: 'a', value })))
    const runtime = await startRuntime(t, { topology: oversizedTopology(input, output), maxInFlight })
    const [dead] = await consume(`${input}.dlq`, { count: 1, timeoutMs: 60_000 })
    assert.ok(dead)
    assert.equal(dead.headers.get('weir.origin.offset')?.toString(), '2', 'the huge record, not the first of the refused transaction')
    assert.equal(dead.headers.get('weir.error.code')?.toString(), 'WEIR_ERR_POISON_RECORD')
    const outputs = await consume(output, { count: 3, timeoutMs: 30_000 })
    assert.deepEqual(outputs.map(text), ['a=ok-1', 'a=ok-2', 'a=ok-3'], 'each other record once, in order')
    const metrics = await waitFor(async () => {
      const m = await runtime.metrics()
      return m.processed === 3 ? m : undefined
    }, { what: 'three records counted' })
    assert.ok(metrics.failedCommits >= 3 && metrics.failedCommits <= 4, `${metrics.failedCommits} failed commits: the isolated ones and at most one before`)
    assert.equal(metrics.deadLettered, 1)
  })
}

test('a failure that is not a refusal (the output topic does not exist yet) only backs off: reported failing, never dead-lettered, and over once the topic is there', async (t) => {
  const [input] = await createTopics(t, { prefix: 'tf-missing-in', partitions: 1 })
  assert.ok(input)
  const output = uniqueName('tf-missing-out')
  t.after(() => admin().deleteTopics([output]).catch(() => {}))
  await produce([{ topic: input, key: 'a', value: 'v' }])
  // One refusal would be enough to dead-letter the record: none is counted.
  // A send to a missing topic fails within the transaction's budget: 10 s here (the default, 30 s, would make two
  // failures take a minute before their backoff).
  const runtime = await startRuntime(t, { topology: oversizedTopology(input, output), maxTaskFailures: 1, transactionTimeoutMs: 10_000 })
  const failing = await waitFor(async () => (await runtime.metrics()).failures.find((f) => f.failures >= 2), { what: 'two failures in a row', timeoutMs: 90_000 })
  assert.equal(failing.state, 'failing')
  assert.equal(failing.code, 'WEIR_ERR_KAFKA')
  assert.match(failing.message, new RegExp(`Unknown topic ${output}`))
  await admin().createTopics([{ name: output, partitions: 1 }])
  assert.deepEqual((await consume(output, { count: 1, timeoutMs: 90_000 })).map(text), ['a=v'])
  await waitFor(async () => (await runtime.metrics()).failures.length === 0, { what: 'the failures over' })
  assert.deepEqual(await readAll(`${input}.dlq`), [], 'nothing was dead-lettered')
})
