// Keyed records land where the Java client and Kafka Streams put them: murmur2(key) & 0x7fffffff mod count.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { partitionFor } from '../../kafka/index.ts'

test('partitionFor matches Kafka\'s murmur2 reference values (org.apache.kafka.common.utils.UtilsTest)', () => {
  const cases: Array<[string, number]> = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ]
  const big = 2 ** 31 - 1
  for (const [input, hash] of cases) {
    assert.equal(partitionFor(input, big), (hash & 0x7fffffff) % big, input)
    assert.equal(partitionFor(new TextEncoder().encode(input), 7), (hash & 0x7fffffff) % 7, input)
  }
})
