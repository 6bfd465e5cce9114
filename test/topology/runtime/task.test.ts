// A task goes on processing while its commit is in flight: commitPlan() hands over everything so far (the write
// buffers seal it), later records read through it and land in the next plan, committed() applies only the
// sealed writes, rollback() goes back to the last committed state.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../../core/errors.ts'
import { createMemoryStore } from '../../../state/memory-store.ts'
import { defineTopology } from '../../../topology/define.ts'
import type { ProcessorContext } from '../../../topology/processor.ts'
import type { StreamRecord } from '../../../topology/record.ts'
import { Task } from '../../../topology/runtime/task.ts'
import type { ConsumedRecord } from '../../../kafka/types.ts'

function counting() {
  return defineTopology({
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
              const counts = ctx.store<string, number>('counts')
              const next = ((await counts.get(record.key)) ?? 0) + 1
              await counts.put(record.key, next)
              await ctx.forward(record.withValue(`${record.key}=${next}`))
            },
          }
        },
      },
    },
    sinks: { out: { from: ['count'], topic: 'out', keySerde: 'string', valueSerde: 'string' } },
  })
}

async function setup() {
  const base = createMemoryStore()
  await base.open()
  const task = new Task({
    applicationId: 'app',
    partition: 0,
    topology: counting(),
    stores: new Map([['counts', base]]),
    now: () => 0,
    errorPolicy: 'fail',
    deadLetterTopic: (t) => `${t}.dlq`,
    positions: new Map([['in', 0n]]),
  })
  await task.init()
  let offset = 0n
  const pipe = (key: string) => {
    const record: ConsumedRecord = { topic: 'in', partition: 0, offset: offset++, key: Buffer.from(key), value: Buffer.from('x'), timestamp: 0n, headers: new Map() }
    return task.process(record)
  }
  const committedCount = async (key: string) => {
    const bytes = await base.get(Buffer.from(key))
    return bytes === undefined ? undefined : JSON.parse(bytes.toString()) as number
  }
  return { task, pipe, committedCount }
}

const values = (plan: { outputs: Array<{ value?: unknown }> }) => plan.outputs.map((o) => String(o.value))

test('records processed while a commit is in flight read its writes and go into the next plan', async () => {
  const { task, pipe, committedCount } = await setup()
  await pipe('a')
  await pipe('a')
  const first = task.commitPlan()
  assert.deepEqual(values(first), ['a=1', 'a=2'])
  assert.equal(first.positions.get('in'), 2n)
  assert.equal(task.committing, true)
  assert.equal(task.dirty, false, 'a new commit interval started')

  assert.equal(task.uncommitted, 0, 'the plan took everything')
  await pipe('a') // reads a=2 from the sealed layer
  await pipe('b')
  assert.equal(task.dirty, true)
  assert.equal(task.uncommitted, 4, 'two outputs and two store writes wait for the next plan (what bounds processing during a commit)')
  assert.throws(() => task.commitPlan(), (e: unknown) => isWeirError(e, 'WEIR_ERR_STATE_STORE'), 'one plan at a time')

  await task.committed()
  assert.equal(task.committing, false)
  assert.equal(await committedCount('a'), 2, 'only the sealed writes reach the committed store')
  assert.equal(await committedCount('b'), undefined)

  const second = task.commitPlan()
  assert.deepEqual(values(second), ['a=3', 'b=1'], 'the first plan\'s outputs are not sent again')
  assert.equal(second.positions.get('in'), 4n)
  assert.deepEqual(second.storeWrites.get('counts')?.map((op) => op.key.toString()), ['a', 'b'])
  await task.committed()
  assert.equal(await committedCount('a'), 3)
})

test('a failed commit rolls back both the plan in flight and what was processed during it', async () => {
  const { task, pipe, committedCount } = await setup()
  await pipe('a')
  task.commitPlan()
  await task.committed()
  await pipe('a')
  task.commitPlan() // this commit will fail
  await pipe('a')
  task.rollback()
  assert.equal(task.committing, false)
  assert.equal(task.position('in'), 1n, 'back to the last committed position')
  assert.equal(await committedCount('a'), 1)
  await task.process({ topic: 'in', partition: 0, offset: 1n, key: Buffer.from('a'), value: Buffer.from('x'), timestamp: 0n, headers: new Map() })
  assert.deepEqual(values(task.commitPlan()), ['a=2'], 'reprocessing starts from the committed state')
})
