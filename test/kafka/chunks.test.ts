// Bounded produce requests (kafka/chunks.ts): order kept, every chunk within the limit unless one record alone exceeds it.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { chunkRecords, estimateRecordBytes } from '../../kafka/index.ts'
import type { OutgoingRecord } from '../../kafka/index.ts'

test('chunkRecords keeps order and stays within the byte bound', () => {
  const records: OutgoingRecord[] = Array.from({ length: 1000 }, (_, i) => ({ topic: 't', key: `k${i}`, value: 'v'.repeat(i % 97), headers: { h: 'x' } }))
  const chunks = chunkRecords(records, 4096)
  assert.deepEqual(chunks.flat(), records)
  for (const chunk of chunks) assert.ok(chunk.reduce((s, r) => s + estimateRecordBytes(r), 0) <= 4096)
  assert.ok(chunks.length > 1)
})

test('a record larger than the bound goes alone; empty input gives no chunk', () => {
  const big: OutgoingRecord = { topic: 't', value: Buffer.alloc(10_000) }
  const small: OutgoingRecord = { topic: 't', value: 'a' }
  assert.deepEqual(chunkRecords([small, big, small], 1000), [[small], [big], [small]])
  assert.deepEqual(chunkRecords([], 1000), [])
  assert.ok(estimateRecordBytes(big) >= 10_000)
})
