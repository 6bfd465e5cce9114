// A task with maxInFlight > 1, driven by hand (pure logic over a memory store): each record waits on a gate the
// test opens, so the order records finish in is the test's. Records of one key wait for each other, records of
// other keys do not; a finished record's writes and outputs join the task, one in flight's stay its own; a commit
// plan, timers and punctuations refuse to run with records in flight; a rollback drops what records in flight do.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../../core/errors.ts'
import type { ConsumedRecord } from '../../../kafka/types.ts'
import { createMemoryStore } from '../../../state/memory-store.ts'
import { defineTopology } from '../../../topology/define.ts'
import type { ProcessorContext } from '../../../topology/processor.ts'
import type { StreamRecord } from '../../../topology/record.ts'
import { Task } from '../../../topology/runtime/task.ts'

async function setup(errorPolicy: 'fail' | 'dead-letter' = 'dead-letter') {
  const gates = new Map<string, PromiseWithResolvers<void>>()
  const gate = (value: string) => {
    let g = gates.get(value)
    if (g === undefined) {
      g = Promise.withResolvers<void>()
      gates.set(value, g)
    }
    return g
  }
  const started: string[] = []
  const seen = new Map<string, number | undefined>()
  const topology = defineTopology({
    sources: { in: { topic: 'in', keySerde: 'string', valueSerde: 'string' } },
    stores: { counts: { keySerde: 'string', valueSerde: 'json' } },
    processors: {
      count: {
        from: ['in'],
        stores: ['counts'],
        use: () => {
          let ctx: ProcessorContext
          return {
            init(c) {
              ctx = c
            },
            async process(record: StreamRecord<string, string>) {
              started.push(record.value)
              const counts = ctx.store<string, number>('counts')
              // Written before the wait: no other record may see it until this one finished.
              await counts.put(`mine-${record.value}`, 1)
              await gate(record.value).promise
              seen.set(record.value, await counts.get('shared'))
              if (record.value.startsWith('bad')) throw new Error('bad record')
              const next = ((await counts.get(record.key)) ?? 0) + 1
              await counts.put(record.key, next)
              await counts.put('shared', next)
              await ctx.forward(record.withValue(`${record.key}=${next}@${ctx.recordMetadata()?.offset}`))
            },
          }
        },
      },
    },
    sinks: { out: { from: ['count'], topic: 'out', keySerde: 'string', valueSerde: 'string' } },
  })
  const base = createMemoryStore()
  await base.open()
  const task = new Task({
    applicationId: 'app',
    partition: 0,
    topology,
    stores: new Map([['counts', base]]),
    now: () => 0,
    errorPolicy,
    deadLetterTopic: (t) => `${t}.dlq`,
    positions: new Map([['in', 0n]]),
    maxInFlight: 4,
  })
  await task.init()
  let offset = 0n
  const start = (key: string, value: string) => {
    const record: ConsumedRecord = { topic: 'in', partition: 0, offset: offset++, key: Buffer.from(key), value: Buffer.from(value), timestamp: 0n, headers: new Map() }
    task.start(record)
  }
  const open = async (value: string) => {
    gate(value).resolve()
    // Let the record run to its end (a few turns of the microtask queue and the memory store's awaits).
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r))
  }
  return { task, start, open, started, seen, base }
}

const outputs = (task: Task) => task.commitPlan().outputs.map((o) => String(o.value))

test('records of other keys run at once and finish in any order; one key waits for its previous record', async () => {
  const { task, start, open, started, seen } = await setup()
  start('a', 'a1')
  start('b', 'b1')
  start('a', 'a2')
  await open('nothing')
  assert.deepEqual(started, ['a1', 'b1'], 'a2 waits for a1; b1 does not')
  assert.equal(task.inFlight, 3)
  await open('b1')
  assert.equal(seen.get('b1'), undefined, "a1 in flight wrote nothing b1 can see")
  await open('a2')
  assert.deepEqual(started, ['a1', 'b1'], 'a2 is still behind a1')
  await open('a1')
  assert.equal(seen.get('a1'), 1, 'a1 sees what the finished b1 wrote')
  assert.deepEqual(started, ['a1', 'b1', 'a2'])
  await task.concurrent?.drained()
  assert.equal(task.inFlight, 0)
  assert.deepEqual(outputs(task), ['b=1@1', 'a=1@0', 'a=2@2'], 'outputs in the order records finished; one key in offset order')
  assert.equal(task.position('in'), 3n)
})

test('a commit plan, timers and punctuations refuse to run with records in flight', async () => {
  const { task, start, open } = await setup()
  start('a', 'a1')
  await open('nothing')
  for (const run of [() => task.commitPlan(), () => task.fireTimers(0), () => task.punctuate(0)]) {
    await assert.rejects(async () => run(), (error: unknown) => isWeirError(error, 'WEIR_ERR_STATE_STORE') && /records are in flight/.test(error.message))
  }
  await open('a1')
  await task.concurrent?.drained()
  const plan = task.commitPlan()
  assert.deepEqual(plan.positions, new Map([['in', 1n]]))
  assert.deepEqual(plan.outputs.map((o) => String(o.value)), ['a=1@0'])
  const writes = plan.storeWrites.get('counts')?.map((w) => w.key.toString()) ?? []
  assert.deepEqual(writes.sort(), ['a', 'mine-a1', 'shared'])
})

test('a failing record is dead-lettered with nothing of its writes; the others keep theirs', async () => {
  const { task, start, open } = await setup('dead-letter')
  start('a', 'bad-a')
  start('b', 'b1')
  await open('bad-a')
  await open('b1')
  await task.concurrent?.drained()
  const plan = task.commitPlan()
  assert.deepEqual(plan.outputs.map((o) => o.topic), ['in.dlq', 'out'])
  const writes = plan.storeWrites.get('counts')?.map((w) => w.key.toString()) ?? []
  assert.deepEqual(writes.sort(), ['b', 'mine-b1', 'shared'])
})

test('with the fail policy a failing record stops the task: throwIfFailed rethrows its error', async () => {
  const { task, start, open } = await setup('fail')
  start('a', 'bad-a')
  await open('bad-a')
  await task.concurrent?.drained()
  assert.throws(() => task.concurrent?.throwIfFailed(), (error: unknown) => isWeirError(error, 'WEIR_ERR_PROCESSING'))
})

test('a rollback with records in flight drops what they do when they finish; positions go back to the committed ones', async () => {
  const { task, start, open, base } = await setup()
  start('a', 'a1')
  start('b', 'b1')
  await open('a1')
  assert.equal(task.inFlight, 1)
  task.rollback()
  await open('b1')
  await task.concurrent?.drained()
  assert.equal(task.position('in'), 0n)
  assert.equal(task.dirty, false)
  assert.equal(task.uncommitted, 0, 'no output or write of a1 (finished before) or b1 (finished after) remains')
  assert.equal(await base.get(Buffer.from('b')), undefined)
})
