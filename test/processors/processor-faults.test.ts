// withFaults around a plain processor, through the test driver: rules matched by processor name and source
// topic; an error meets the runtime's error policy (a dead letter), a drop loses the forwards, a duplicate
// processes the record twice, a corrupt value reaches the processor as garbage bytes, a delay waits.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createFaultInjector } from '../../processors/faults/injector.ts'
import type { FaultInjector } from '../../processors/faults/injector.ts'
import { withFaults } from '../../processors/faults/processor-faults.ts'
import { parseFaultRule } from '../../processors/faults/rules.ts'
import { defineTopology } from '../../topology/define.ts'
import type { Processor, ProcessorContext } from '../../topology/processor.ts'
import { StreamRecord } from '../../topology/record.ts'
import { createTestDriver } from '../../topology/test-driver.ts'

function setup() {
  const faults = createFaultInjector()
  const seen: unknown[] = []
  const sleeps: number[] = []
  const counter = (): Processor<string, unknown> => {
    let context: ProcessorContext
    return {
      init(c) {
        context = c
      },
      async process(record) {
        seen.push(record.value)
        const store = context.store<string, number>('counts')
        const count = ((await store.get(record.key)) ?? 0) + 1
        await store.put(record.key, count)
        await context.forward(new StreamRecord(record.key, { count }, record.timestamp))
      },
    }
  }
  const topology = defineTopology({
    sources: { in: { topic: 'pf.in', keySerde: 'string', valueSerde: 'json' } },
    stores: { counts: { keySerde: 'string', valueSerde: 'json', backend: 'memory' } },
    processors: { count: { from: ['in'], stores: ['counts'], use: withFaults(counter, faults, { sleep: async (ms) => void sleeps.push(ms) }) } },
    sinks: { out: { from: ['count'], topic: 'pf.out', keySerde: 'string', valueSerde: 'json' } },
  })
  return { faults, seen, sleeps, topology }
}

const arm = (faults: FaultInjector, rule: object) => {
  faults.arm()
  faults.set(parseFaultRule(rule))
}

test('without a matching rule the processor runs as it is', async () => {
  const { faults, topology, seen } = setup()
  arm(faults, { id: 'elsewhere', kind: 'drop', match: { processor: 'other' } })
  const driver = await createTestDriver(topology)
  await driver.pipe('in', { key: 'a', value: { n: 1 } })
  assert.deepEqual(driver.take('pf.out').map((o) => [o.value, o.headers['weir.fault']]), [[{ count: 1 }, undefined]])
  assert.deepEqual(seen, [{ n: 1 }])
})

test('error: the runtime error policy dead-letters the record, with the injected code', async () => {
  const { faults, topology, seen } = setup()
  arm(faults, { id: 'boom', kind: 'error', match: { processor: 'count', topic: 'pf.in' } })
  const driver = await createTestDriver(topology, { errorPolicy: 'dead-letter' })
  await driver.pipe('in', { key: 'a', value: { n: 1 } })
  assert.deepEqual(driver.take('pf.out'), [])
  const [dead] = driver.take('pf.in.dlq')
  assert.ok(dead, 'a dead letter')
  assert.equal(dead.headers['weir.error.code'], 'WEIR_ERR_NON_RETRIABLE')
  assert.equal(dead.headers['weir.error.message'], 'fault injected by rule boom into processor count')
  assert.equal(dead.headers['weir.processor'], 'count')
  assert.deepEqual(seen, [])
  assert.deepEqual(faults.injections(), [{ kind: 'error', rule: 'boom', count: 1 }])
})

test('drop loses the forwards (the store write stays); duplicate processes the record twice, marked', async () => {
  const { faults, topology } = setup()
  arm(faults, { id: 'lost', kind: 'drop', match: { processor: 'count' } })
  const driver = await createTestDriver(topology)
  await driver.pipe('in', { key: 'a', value: { n: 1 } })
  assert.deepEqual(driver.take('pf.out'), [])
  assert.deepEqual(await driver.storeEntries('counts'), [{ key: 'a', value: 1 }])
  faults.clear()
  faults.set(parseFaultRule({ id: 'twice', kind: 'duplicate' }))
  await driver.pipe('in', { key: 'a', value: { n: 2 } })
  assert.deepEqual(driver.take('pf.out').map((o) => [o.value, o.headers['weir.fault']]), [
    [{ count: 2 }, 'duplicate:twice'],
    [{ count: 3 }, 'duplicate:twice'],
  ])
})

test('corrupt hands the processor garbage bytes; delay waits first; both marked', async () => {
  const { faults, topology, seen, sleeps } = setup()
  arm(faults, { id: 'garble', kind: 'corrupt' })
  faults.set(parseFaultRule({ id: 'slow', kind: 'delay', delayMs: 300 }))
  const driver = await createTestDriver(topology)
  await driver.pipe('in', { key: 'a', value: { n: 1 } })
  assert.ok(seen[0] instanceof Uint8Array)
  assert.notDeepEqual(Buffer.from(seen[0] as Uint8Array).toString(), JSON.stringify({ n: 1 }))
  assert.deepEqual(sleeps, [300])
  assert.deepEqual(driver.take('pf.out').map((o) => o.headers['weir.fault']), ['delay:slow,corrupt:garble'])
})
