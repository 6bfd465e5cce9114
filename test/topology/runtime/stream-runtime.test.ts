// The Kafka runtime on the real broker: transactions, changelog restore, timers, dead letters.
import assert from 'node:assert/strict'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import type { WeirError } from '../../../core/errors.ts'
import { defineTopology } from '../../../topology/define.ts'
import type { FiredTimer, ProcessorContext } from '../../../topology/processor.ts'
import { StreamRecord } from '../../../topology/record.ts'
import type { StreamRuntimeOptions } from '../../../topology/runtime/runtime-options.ts'
import { changelogTopic } from '../../../topology/runtime/state-restore.ts'
import { createStreamRuntime } from '../../../topology/runtime/stream-runtime.ts'
import { brokers, closeAdmin, consume, createTopics, produce, readAll, text, uniqueName } from '../../helpers/kafka.ts'
import { createProducer } from '../../../kafka/index.ts'
import { openStore } from '../../../state/open-store.ts'
import { waitFor } from '../../helpers/wait.ts'
import { startTestRuntime } from '../../helpers/runtime.ts'

const exists = (path: string) => access(path).then(() => true, () => false)

after(closeAdmin)

function countingTopology(input: string, output: string, onProcessed?: () => void) {
  return defineTopology({
    sources: { input: { topic: input, keySerde: 'string', valueSerde: 'string' } },
    stores: { counts: { keySerde: 'string', valueSerde: 'json' } },
    processors: {
      count: {
        from: ['input'],
        stores: ['counts'],
        timers: true,
        use: () => {
          let context: ProcessorContext
          return {
            init(c) {
              context = c
            },
            async process(record: StreamRecord<string, string>) {
              const key = record.key as string
              if (record.value === 'poison') throw new Error('poison record')
              const store = context.store<string, number>('counts')
              const next = ((await store.get(key)) ?? 0) + 1
              await store.put(key, next)
              // "timer" sets a timer due in 300 ms, "timer:<ms>" one due in that many ms.
              if (record.value.startsWith('timer')) await context.timers.set(`t-${key}`, context.now() + Number(record.value.split(':')[1] ?? 300), { key })
              await context.forward(record.withValue(`${key}=${next}`))
              onProcessed?.()
            },
            async onTimer(timer: FiredTimer) {
              await context.forward(new StreamRecord((timer.payload as { key: string }).key, `fired:${timer.key}`, timer.at))
            },
          }
        },
      },
    },
    sinks: { out: { from: ['count'], topic: output, keySerde: 'string', valueSerde: 'string' } },
  })
}

async function startRuntime(t: TestContext, overrides: Partial<StreamRuntimeOptions> & Pick<StreamRuntimeOptions, 'topology' | 'applicationId'>) {
  return startTestRuntime(t, overrides)
}

test('records are processed with state, outputs and offsets committed together', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'rt-in', partitions: 2 }, { prefix: 'rt-out', partitions: 2 })
  assert.ok(input && output)
  const applicationId = uniqueName('app')
  const keys = ['a', 'b', 'c', 'd']
  await produce(Array.from({ length: 20 }, (_, i) => ({ topic: input, key: keys[i % 4] as string, value: `v${i}` })))
  const { runtime } = await startRuntime(t, { applicationId, topology: countingTopology(input, output) })
  const outputs = await consume(output, { count: 20, timeoutMs: 30_000 })
  const last = new Map<string, number>()
  for (const r of outputs) {
    const [key, n] = text(r).split('=') as [string, string]
    assert.equal(Number(n), (last.get(key) ?? 0) + 1, `counts per key go up by one: ${text(r)}`)
    last.set(key, Number(n))
  }
  assert.deepEqual([...last.entries()].sort(), keys.map((k) => [k, 5]))
  const metrics = await runtime.metrics()
  assert.equal(metrics.processed, 20)
  assert.equal(metrics.tasks, 2)
})

test('a new worker restores state from the changelog and continues where the last one committed', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'rs-in', partitions: 1 }, { prefix: 'rs-out', partitions: 1 })
  assert.ok(input && output)
  const applicationId = uniqueName('restore')
  const topology = countingTopology(input, output)
  await produce(Array.from({ length: 6 }, (_, i) => ({ topic: input, key: 'k', value: `first-${i}` })))
  const first = await startRuntime(t, { applicationId, topology })
  await consume(output, { count: 6, timeoutMs: 30_000 })
  await first.runtime.stop()
  // A fresh state folder: everything comes from Kafka.
  await produce(Array.from({ length: 4 }, (_, i) => ({ topic: input, key: 'k', value: `second-${i}` })))
  const second = await startRuntime(t, { applicationId, topology })
  const outputs = await consume(output, { count: 10, timeoutMs: 30_000 })
  assert.deepEqual(
    outputs.map(text),
    Array.from({ length: 10 }, (_, i) => `k=${i + 1}`),
  )
  assert.ok((await second.runtime.metrics()).restoredRecords >= 1)
  // Once the second worker stopped nothing more can come: read to the end offsets, so an output repeated after
  // the ten expected ones (a replay of the first worker's inputs) is seen.
  await second.runtime.stop()
  assert.deepEqual((await readAll(output)).map(text), Array.from({ length: 10 }, (_, i) => `k=${i + 1}`), 'nothing after the ten')
})

test('a failing record goes to the dead-letter topic with its headers and the worker keeps going', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'dl-in', partitions: 1 }, { prefix: 'dl-out', partitions: 1 })
  assert.ok(input && output)
  const applicationId = uniqueName('dlq')
  await produce([
    { topic: input, key: 'x', value: 'ok-1' },
    { topic: input, key: 'x', value: 'poison', headers: { trace: 'abc' } },
    { topic: input, key: 'x', value: 'ok-2' },
  ])
  await startRuntime(t, { applicationId, topology: countingTopology(input, output) })
  const outputs = await consume(output, { count: 2, timeoutMs: 30_000 })
  assert.deepEqual(outputs.map(text), ['x=1', 'x=2'])
  const [dead] = await consume(`${input}.dlq`, { count: 1, timeoutMs: 30_000 })
  assert.ok(dead)
  assert.equal(text(dead), 'poison')
  assert.equal(dead.key?.toString(), 'x')
  const header = (name: string) => dead.headers.get(name)?.toString()
  assert.equal(header('weir.error.code'), 'WEIR_ERR_PROCESSING')
  assert.match(header('weir.error.message') ?? '', /poison record/)
  assert.equal(header('weir.origin.topic'), input)
  assert.equal(header('weir.origin.partition'), '0')
  assert.equal(header('weir.origin.offset'), '1')
  assert.equal(header('weir.processor'), 'count')
  assert.equal(header('weir.attempts'), '1')
  assert.equal(header('trace'), 'abc')
})

test('timers survive a restart and fire exactly once', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'tm-in', partitions: 1 }, { prefix: 'tm-out', partitions: 1 })
  assert.ok(input && output)
  const applicationId = uniqueName('timers')
  const topology = countingTopology(input, output)
  // p, q and r are due 8 s after the first worker processed them: it is stopped as soon as it has, long
  // before. s is due at once: it fires before the stop and must not fire again after the restart.
  await produce([...['p', 'q', 'r'].map((key) => ({ topic: input, key, value: 'timer:8000' })), { topic: input, key: 's', value: 'timer:0' }])
  const first = await startRuntime(t, { applicationId, topology })
  await waitFor(async () => {
    const m = await first.runtime.metrics()
    return m.processed === 4 && m.timersFired === 1
  }, { what: 'four timers set and the one due at once fired', timeoutMs: 30_000 })
  await first.runtime.stop()
  // The stopped worker can write nothing more: what the topic holds now is all it did.
  const beforeRestart = (await readAll(output)).map(text)
  assert.deepEqual(beforeRestart.sort(), ['fired:t-s', 'p=1', 'q=1', 'r=1', 's=1'], 'the timers were set; only the one due at once fired before the stop')

  const second = await startRuntime(t, { applicationId, topology })
  await waitFor(async () => (await readAll(output)).filter((r) => text(r).startsWith('fired:')).length >= 4, { what: 'the timers fired after the restart', timeoutMs: 30_000 })
  assert.equal((await second.runtime.metrics()).timersFired, 3, 'the new worker fired them')
  // Stop it too, then read to the end offsets: a timer fired twice would be there.
  await second.runtime.stop()
  const fired = (await readAll(output)).map(text).filter((v) => v.startsWith('fired:'))
  assert.deepEqual(fired.sort(), ['fired:t-p', 'fired:t-q', 'fired:t-r', 'fired:t-s'], 'each fired exactly once')
})

function reminderTopology(input: string, output: string) {
  // "set:<delay ms>" sets (or moves) the key's timer, "cancel" cancels it; every record is acknowledged.
  return defineTopology({
    sources: { input: { topic: input, keySerde: 'string', valueSerde: 'string' } },
    processors: {
      remind: {
        from: ['input'],
        timers: true,
        use: () => {
          let context: ProcessorContext
          return {
            init(c) {
              context = c
            },
            async process(record: StreamRecord<string, string>) {
              let ack = record.value
              if (record.value.startsWith('set:')) await context.timers.set(record.key, context.now() + Number(record.value.slice(4)))
              if (record.value === 'cancel') ack = `cancelled=${await context.timers.cancel(record.key)}`
              await context.forward(record.withValue(`${record.key}:${ack}`))
            },
            async onTimer(timer: FiredTimer) {
              await context.forward(new StreamRecord(timer.key, `${timer.key}:fired`, timer.at))
            },
          }
        },
      },
    },
    sinks: { out: { from: ['remind'], topic: output, keySerde: 'string', valueSerde: 'string' } },
  })
}

test('a timer store changelogs only its time entries; after a restore from it, timers are cancelled and moved by key', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'tk-in', partitions: 1 }, { prefix: 'tk-out', partitions: 1 })
  assert.ok(input && output)
  const applicationId = uniqueName('timer-index')
  const topology = reminderTopology(input, output)
  await produce([
    { topic: input, key: 'moved', value: 'set:60000' },
    { topic: input, key: 'cancelled', value: 'set:60000' },
    { topic: input, key: 'kept', value: 'set:2000' },
  ])
  const first = await startRuntime(t, { applicationId, topology })
  await consume(output, { count: 3, timeoutMs: 30_000 })
  await first.runtime.stop()
  const changelog = await readAll(changelogTopic(applicationId, 'remind__timers'))
  assert.equal(changelog.length, 3, 'one record per timer set')
  assert.ok(changelog.every((r) => r.key?.[0] === 0x74), 'time entries only: no key-index records')

  // A new worker with an empty state folder restores the time entries and rebuilds the index from them.
  await startRuntime(t, { applicationId, topology })
  await produce([
    { topic: input, key: 'moved', value: 'set:500' },
    { topic: input, key: 'cancelled', value: 'cancel' },
  ])
  const outputs = await consume(output, { until: (_r, all) => all.filter((r) => text(r).endsWith(':fired')).length >= 2, timeoutMs: 30_000 })
  assert.ok(outputs.map(text).includes('cancelled:cancelled=true'), outputs.map(text).join(', '))
  assert.deepEqual(outputs.map(text).filter((v) => v.endsWith(':fired')).sort(), ['kept:fired', 'moved:fired'])
  // Moving 'moved' deleted its first time entry: the changelog now ends with that tombstone among the others.
  const after = await readAll(changelogTopic(applicationId, 'remind__timers'))
  assert.ok(after.every((r) => r.key?.[0] === 0x74))
  const live = new Map<string, boolean>()
  for (const r of after) live.set(r.key?.toString('latin1') ?? '', r.value !== undefined)
  assert.equal([...live.values()].filter(Boolean).length, 0, 'every timer fired or was cancelled: no time entry left')
})

test('a partition that moved away has its state folder removed; when it comes back its state is restored from the changelog', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'mv-in', partitions: 2 }, { prefix: 'mv-out', partitions: 2 })
  assert.ok(input && output)
  const applicationId = uniqueName('move')
  const topology = countingTopology(input, output)
  // Keys on both partitions.
  const keys = ['a', 'b', 'c', 'd', 'e', 'f']
  await produce(keys.map((key) => ({ topic: input, key, value: 'first' })))
  const first = await startRuntime(t, { applicationId, topology, stateCleanupDelayMs: 100 })
  await consume(output, { count: keys.length, timeoutMs: 30_000 })
  assert.deepEqual(first.runtime.partitions(), [0, 1])
  const second = await startRuntime(t, { applicationId, topology })
  await waitFor(() => first.runtime.partitions().length === 1 && second.runtime.partitions().length === 1, { timeoutMs: 30_000 })
  const [moved] = second.runtime.partitions()
  assert.ok(moved !== undefined)
  await waitFor(async () => !(await exists(join(first.stateDir, applicationId, String(moved)))), { timeoutMs: 10_000 })
  await produce(keys.map((key) => ({ topic: input, key, value: 'second' })))
  await consume(output, { count: keys.length * 2, timeoutMs: 30_000 })
  // Back to the first runtime, whose folder for that partition is gone: everything comes from the changelog.
  await second.runtime.stop()
  await waitFor(() => first.runtime.partitions().length === 2, { timeoutMs: 30_000 })
  await produce(keys.map((key) => ({ topic: input, key, value: 'third' })))
  const outputs = await consume(output, { count: keys.length * 3, timeoutMs: 30_000 })
  const last = new Map<string, string>()
  for (const r of outputs) last.set(r.key?.toString() ?? '', text(r))
  assert.deepEqual([...last.values()].sort(), keys.map((k) => `${k}=3`))
})

test('with commitWhenIdle (the default) a task commits as soon as it has processed what it fetched; without it, at the interval', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'rt-idle-in', partitions: 1 }, { prefix: 'rt-idle-out', partitions: 1 })
  assert.ok(input && output)
  // An interval far longer than the test: only the idle commit can make the outputs visible.
  const eager = await startRuntime(t, { applicationId: uniqueName('app'), topology: countingTopology(input, output), commitIntervalMs: 600_000 })
  await produce([1, 2, 3].map((i) => ({ topic: input, key: 'k', value: `v${i}` })))
  const outputs = await consume(output, { count: 3, timeoutMs: 20_000 })
  assert.deepEqual(outputs.map(text), ['k=1', 'k=2', 'k=3'])
  // Outputs are visible once the transaction commits; the commit is counted a moment later (after the local
  // stores and checkpoints are written), so wait for the count rather than read it at once.
  await waitFor(async () => (await eager.runtime.metrics()).commits >= 1, { what: 'the idle commit counted', timeoutMs: 5000 })
  await eager.runtime.stop()

  const [input2, output2] = await createTopics(t, { prefix: 'rt-interval-in', partitions: 1 }, { prefix: 'rt-interval-out', partitions: 1 })
  assert.ok(input2 && output2)
  let processed = 0
  const lazy = await startRuntime(t, { applicationId: uniqueName('app'), topology: countingTopology(input2, output2, () => processed++), commitIntervalMs: 600_000, commitWhenIdle: false })
  await produce([1, 2, 3].map((i) => ({ topic: input2, key: 'k', value: `v${i}` })))
  await waitFor(() => processed === 3, { what: 'three records processed' })
  await new Promise((r) => setTimeout(r, 1000))
  assert.equal((await lazy.runtime.metrics()).commits, 0, 'nothing committed before the interval')
  assert.equal((await lazy.runtime.metrics()).processed, 0, 'counters count what was committed, not what waits for a commit')
  await assert.rejects(consume(output2, { count: 1, timeoutMs: 1500 }), /read 0 record/)
  // Stopping commits what was processed.
  await lazy.runtime.stop()
  assert.equal((await lazy.runtime.metrics()).processed, 3, 'counted once committed')
  assert.deepEqual((await consume(output2, { count: 3 })).map(text), ['k=1', 'k=2', 'k=3'])
})

test('a commit that fails (the producer was fenced) drops what the task did since its last commit; the next owner redoes it exactly once', async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'rt-fenced-in', partitions: 1 }, { prefix: 'rt-fenced-out', partitions: 1 })
  assert.ok(input && output)
  const applicationId = uniqueName('fenced')
  const topology = countingTopology(input, output)
  await produce(Array.from({ length: 5 }, (_, i) => ({ topic: input, key: 'k', value: `first-${i}` })))
  const first = await startRuntime(t, { applicationId, topology })
  await consume(output, { count: 5, timeoutMs: 30_000 })
  // Another producer takes the task's transactional id: the runtime's next transaction is fenced (a zombie).
  const usurper = createProducer({ brokers: brokers(), transactionalId: `${applicationId}-0` })
  await usurper.beginTransaction()
  await usurper.close()
  await produce(Array.from({ length: 5 }, (_, i) => ({ topic: input, key: 'k', value: `second-${i}` })))
  await waitFor(async () => (await first.runtime.metrics()).failedCommits >= 1, { what: 'a failed commit', timeoutMs: 30_000 })
  assert.equal(first.runtime.state(), 'running', 'a failed commit is not fatal')
  // A second worker joins: the rebalance gives the partition an owner again (either worker), which resumes
  // from the last committed offsets and state.
  const second = await startRuntime(t, { applicationId, topology })
  const outputs = await consume(output, { count: 10, timeoutMs: 60_000 })
  assert.deepEqual(outputs.map(text), Array.from({ length: 10 }, (_, i) => `k=${i + 1}`), 'no output of the fenced transaction, none twice')
  // With both workers stopped nothing more can come: read to the end offsets, so a duplicate after the ten is seen.
  await Promise.all([first.runtime.stop(), second.runtime.stop()])
  assert.deepEqual((await readAll(output)).map(text), Array.from({ length: 10 }, (_, i) => `k=${i + 1}`), 'nothing after the ten')
})

test('commitWhenIdle must be a boolean', () => {
  assert.throws(
    () => createStreamRuntime({ applicationId: 'a', topology: countingTopology('i', 'o'), brokers: brokers(), stateDir: '/tmp/x', openStore, commitWhenIdle: 'yes' as unknown as boolean }),
    /commitWhenIdle must be a boolean/,
  )
})

test('sources with different partition counts cannot share tasks: start fails with WEIR_ERR_NOT_COPARTITIONED and processes nothing', async (t) => {
  const [left, right, output] = await createTopics(t, { prefix: 'cp-left', partitions: 2 }, { prefix: 'cp-right', partitions: 3 }, { prefix: 'cp-out', partitions: 2 })
  assert.ok(left && right && output)
  const topology = defineTopology({
    sources: {
      left: { topic: left, keySerde: 'string', valueSerde: 'string' },
      right: { topic: right, keySerde: 'string', valueSerde: 'string' },
    },
    processors: { pass: { from: ['left', 'right'], use: () => ({ process: async () => {} }) } },
    sinks: { out: { from: ['pass'], topic: output, keySerde: 'string', valueSerde: 'string' } },
  })
  await produce([{ topic: left, key: 'k', value: 'v' }])
  const applicationId = uniqueName('copart')
  const { runtime } = await startTestRuntime(t, { applicationId, topology, start: false })
  await assert.rejects(runtime.start(), (error: WeirError) => {
    assert.equal(error.code, 'WEIR_ERR_NOT_COPARTITIONED')
    assert.match(error.message, new RegExp(`${left}=2`))
    assert.match(error.message, new RegExp(`${right}=3`))
    assert.deepEqual(error.details.partitions, { [left]: 2, [right]: 3 })
    return true
  })
  assert.notEqual(runtime.state(), 'running')
  assert.equal((await runtime.metrics()).processed, 0)
  assert.equal((await runtime.metrics()).tasks, 0)
})
