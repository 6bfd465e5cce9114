// Durable timers over a write buffer: due scans and the earliest pending time an idle worker waits for.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createMemoryStore } from '../../../state/memory-store.ts'
import { DurableTimers } from '../../../topology/runtime/timers.ts'
import { WriteBuffer } from '../../../topology/runtime/write-buffer.ts'

async function timers(): Promise<{ timers: DurableTimers; buffer: WriteBuffer }> {
  const base = createMemoryStore()
  await base.open()
  const buffer = new WriteBuffer(base)
  return { timers: new DurableTimers(buffer), buffer }
}

test('nextAt is the earliest pending timer, across pending and committed writes, and follows set, cancel and remove', async () => {
  const { timers: t, buffer } = await timers()
  assert.equal(await t.nextAt(), undefined)
  await t.set('b', 2_000)
  await t.set('a', 3_000)
  await buffer.flushToBase()
  await t.set('c', 1_500)
  assert.equal(await t.nextAt(), 1_500)
  await t.cancel('c')
  assert.equal(await t.nextAt(), 2_000)
  // Moving a timer later moves the earliest time too.
  await t.set('b', 5_000)
  assert.equal(await t.nextAt(), 3_000)
  const [due] = await t.due(3_000, 10)
  assert.ok(due)
  assert.equal(due.key, 'a')
  t.remove(due)
  assert.equal(await t.nextAt(), 5_000)
  assert.deepEqual(await t.due(4_999, 10), [])
  // A timer set before what already fired is found again.
  await t.set('z', 1_000)
  assert.equal(await t.nextAt(), 1_000)
  assert.deepEqual((await t.due(4_999, 10)).map((d) => d.key), ['z'])
})
