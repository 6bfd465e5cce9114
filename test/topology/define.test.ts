import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { defineTopology } from '../../topology/define.ts'

const noop = () => ({ process() {} })

test('a valid topology is frozen and ordered parents first', () => {
  const topology = defineTopology({
    sources: { commands: { topic: 'orders.commands' } },
    stores: { seen: {} },
    processors: {
      route: { from: ['dedupe'], use: noop },
      dedupe: { from: ['commands'], use: noop, stores: ['seen'], timers: true },
    },
    sinks: { out: { from: ['route'], topic: 'orders.results' } },
  })
  assert.deepEqual(topology.order, ['dedupe', 'route'])
  assert.deepEqual(topology.sourceTopics, ['orders.commands'])
  assert.deepEqual(Object.keys(topology.stores).sort(), ['dedupe__timers', 'seen'])
  assert.equal(topology.stores.seen?.backend, 'rocksdb')
  assert.equal(topology.stores.seen?.changelog, true)
  assert.ok(Object.isFrozen(topology))
  assert.match(topology.describe(), /commands \(topic: orders\.commands\) --> dedupe/)
  assert.match(topology.describe(), /dedupe \(stores: seen, dedupe__timers\) <-- commands --> route/)
  const mermaid = topology.mermaid()
  assert.match(mermaid, /^graph LR/)
  assert.match(mermaid, /src_commands --> proc_dedupe/)
  assert.match(mermaid, /proc_route --> sink_out/)
  assert.match(mermaid, /proc_dedupe -.- store_seen/)
})

test('every problem is reported at once', () => {
  try {
    defineTopology({
      sources: { a: { topic: 't1' }, b: { topic: 't1' } },
      stores: { 'bad name!': {} },
      processors: {
        a: { from: ['x'], use: noop },
        p1: { from: ['p2'], use: noop, stores: ['missing'] },
        p2: { from: ['p1'], use: noop },
        lonely: { from: [], use: noop },
      },
      sinks: { out: { from: [], topic: 'o' }, out2: { from: ['out'], topic: '' } },
    })
    assert.fail('should throw')
  } catch (error) {
    assert.ok(isWeirError(error, 'WEIR_ERR_TOPOLOGY_INVALID'))
    const violations = error.details.violations as string[]
    const expect = [
      /duplicate name a/,
      /read the same topic t1/,
      /store name "bad name!"/,
      /processor p1: unknown store missing/,
      /cycle: /,
      /processor lonely has no input/,
      /sink out has no input/,
      /sink out2: a sink \(out\) cannot be a parent/,
      /sink out2: topic must be/,
    ]
    for (const pattern of expect) assert.ok(violations.some((v) => pattern.test(v)), `missing ${pattern}: ${violations.join(' | ')}`)
  }
})

test('a topology needs a source', () => {
  assert.throws(() => defineTopology({ sources: {} }), (e: unknown) => isWeirError(e, 'WEIR_ERR_TOPOLOGY_INVALID'))
})
