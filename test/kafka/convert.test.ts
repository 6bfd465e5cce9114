import assert from 'node:assert/strict'
import test from 'node:test'

import { retryDelayMs } from '../../kafka/convert.ts'

// Shaped like the client's errors: a MultipleErrors wrapping a ResponseError wrapping ProtocolErrors.
function protocolError(apiId: string): Error {
  const inner = Object.assign(new Error(apiId), { apiId })
  return Object.assign(new Error('failed'), { errors: [Object.assign(new Error('response'), { errors: [inner] })] })
}

test('CONCURRENT_TRANSACTIONS is retried after 2, 4, 8 ... ms, everything else backs off from 100 ms', () => {
  const concurrent = protocolError('CONCURRENT_TRANSACTIONS')
  assert.deepEqual(
    [1, 2, 3, 4, 8].map((attempt) => retryDelayMs(undefined, 'addPartitionsToTransaction', attempt, 8, concurrent)),
    [2, 4, 8, 16, 256],
  )
  const total = Array.from({ length: 8 }, (_, i) => retryDelayMs(undefined, 'x', i + 1, 8, concurrent)).reduce((a, b) => a + b, 0)
  assert.equal(total, 510, 'eight quick retries wait half a second in all: long enough for markers under load')
  const other = retryDelayMs(undefined, 'send', 1, 8, protocolError('NOT_ENOUGH_REPLICAS'))
  assert.ok(other >= 100 && other < 150, `a slow retry starts at 100 ms (+ jitter), got ${other}`)
  assert.ok(retryDelayMs(undefined, 'send', 8, 8, new Error('socket')) >= 2000)
})
