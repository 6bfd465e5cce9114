// The Redis scheduler's stored body as other languages write it: decoding without a Redis server.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { pack } from 'msgpackr'

import { decodeRedisEnvelope } from '../../../processors/redis/store.ts'

test('a body whose deliverAt is a msgpack uint64 (Go, Java, Python writers) decodes to the same number', () => {
  const deliverAt = 1_764_633_600_123
  const big = Buffer.alloc(9)
  big[0] = 0xcf
  big.writeBigUInt64BE(BigInt(deliverAt), 1)
  const fields: Array<[string, Uint8Array]> = [
    ['v', pack(1)],
    ['id', pack('e-1')],
    ['topic', pack('orders')],
    ['value', pack(Buffer.from('hello'))],
    ['deliverAt', big],
  ]
  const body = Buffer.concat([Uint8Array.of(0x80 | fields.length), ...fields.flatMap(([key, value]) => [pack(key), value])])
  const decoded = decodeRedisEnvelope('e-1', body)
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.problem)
  assert.equal(decoded.envelope.deliverAt, deliverAt)
})
