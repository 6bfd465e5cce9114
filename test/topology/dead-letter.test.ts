// The dead letter's header set (topology/dead-letter.ts) and its fitting (topology/runtime/dead-letter-fit.ts),
// pure logic, and that both writers, the runtime's error policy
// and the command router, give their dead letters the same set (through the test driver).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'

import { WeirError } from '../../core/errors.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import { ordersService } from '../../examples/orders/service.ts'
import { estimateRecordBytes } from '../../kafka/index.ts'
import type { OutgoingRecord } from '../../kafka/index.ts'
import { createTestDriver } from '../../testing.ts'
import { defineTopology } from '../../topology/define.ts'
import { DEAD_LETTER_HEADERS, deadLetterHeaders, isDeadLetter } from '../../topology/dead-letter.ts'
import { DEFAULT_MAX_MESSAGE_BYTES, fitDeadLetter } from '../../topology/runtime/dead-letter-fit.ts'

const origin = (headers: Record<string, string> = {}) => ({
  topic: 'in',
  partition: 2,
  offset: 41n,
  timestamp: 1_700_000_000_000n,
  headers: new Map(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
  processor: 'p',
  attempts: 1,
})

const letter = (value: Buffer | null, key: Buffer | string | null = 'k', own: Record<string, string> = {}): OutgoingRecord => ({
  topic: 'in.dlq',
  key,
  value,
  headers: deadLetterHeaders(new WeirError('WEIR_ERR_PROCESSING', 'it broke'), origin(own)),
})

const text = (record: OutgoingRecord, name: string) => {
  const value = record.headers?.[name]
  return value === undefined ? undefined : value.toString()
}

/** The record's size in a batch of its own, as the broker counts it against max.message.bytes (with the batch header). */
const batchBytes = (record: OutgoingRecord) => 61 + estimateRecordBytes(record)

test('a dead letter that fits keeps its value, with the full value size, key size and SHA-256, and no truncation marker', () => {
  const value = Buffer.from('hello')
  const fitted = fitDeadLetter(letter(value, 'key-1', { trace: 't' }), DEFAULT_MAX_MESSAGE_BYTES)
  assert.deepEqual(fitted.value, value)
  assert.equal(fitted.key, 'key-1')
  assert.equal(text(fitted, DEAD_LETTER_HEADERS.valueSize), '5')
  assert.equal(text(fitted, DEAD_LETTER_HEADERS.keySize), '5')
  assert.equal(text(fitted, DEAD_LETTER_HEADERS.valueSha256), createHash('sha256').update(value).digest('hex'))
  assert.equal(text(fitted, DEAD_LETTER_HEADERS.truncated), undefined)
  assert.equal(text(fitted, 'trace'), 't')
  assert.equal(text(fitted, DEAD_LETTER_HEADERS.code), 'WEIR_ERR_PROCESSING')
  // A null value (a tombstone) and a null key say -1.
  const empty = fitDeadLetter(letter(null, null), DEFAULT_MAX_MESSAGE_BYTES)
  assert.equal(text(empty, DEAD_LETTER_HEADERS.valueSize), '-1')
  assert.equal(text(empty, DEAD_LETTER_HEADERS.keySize), '-1')
})

test('a dead letter over the limit keeps every header and as much of the value as fits, marked truncated', () => {
  for (const limit of [DEFAULT_MAX_MESSAGE_BYTES, 100_000, 4096]) {
    const value = Buffer.alloc(DEFAULT_MAX_MESSAGE_BYTES - 188, 0xc1)
    const fitted = fitDeadLetter(letter(value, 'key-1', { trace: 't' }), limit)
    assert.ok(batchBytes(fitted) <= limit, `${batchBytes(fitted)} bytes fit ${limit}`)
    assert.equal(text(fitted, DEAD_LETTER_HEADERS.truncated), 'value')
    const kept = fitted.value as Buffer
    assert.ok(kept.byteLength > 0 && kept.byteLength < value.byteLength)
    assert.ok(limit - batchBytes(fitted) < 512, `at most a little room is left unused (${limit - batchBytes(fitted)} bytes)`)
    assert.deepEqual(kept, value.subarray(0, kept.byteLength), 'the value is cut at its end')
    assert.equal(text(fitted, DEAD_LETTER_HEADERS.valueSize), String(value.byteLength))
    assert.equal(text(fitted, DEAD_LETTER_HEADERS.valueSha256), createHash('sha256').update(value).digest('hex'), 'the hash is of the full value')
    assert.equal(text(fitted, 'trace'), 't')
    for (const name of ['code', 'message', 'topic', 'partition', 'offset', 'timestamp', 'processor', 'attempts'] as const) {
      assert.ok(text(fitted, DEAD_LETTER_HEADERS[name]) !== undefined, `${name} kept`)
    }
  }
})

test('when the value alone is not enough, the own headers go, then the key is cut; the weir.* headers always stay', () => {
  const big = 'x'.repeat(3000)
  const withHeaders = fitDeadLetter(letter(Buffer.alloc(10), 'k', { a: big, b: big }), 4096)
  assert.equal(text(withHeaders, DEAD_LETTER_HEADERS.truncated), 'headers', 'the small value fits once the headers are gone')
  assert.equal((withHeaders.value as Buffer).byteLength, 10)
  assert.equal(text(withHeaders, 'a'), undefined)
  assert.ok(batchBytes(withHeaders) <= 4096)
  const withKey = fitDeadLetter(letter(Buffer.alloc(10), Buffer.alloc(8000, 1)), 4096)
  assert.equal(text(withKey, DEAD_LETTER_HEADERS.truncated), 'value,key')
  assert.equal(text(withKey, DEAD_LETTER_HEADERS.keySize), '8000')
  assert.ok(batchBytes(withKey) <= 4096)
  assert.equal(text(withKey, DEAD_LETTER_HEADERS.code), 'WEIR_ERR_PROCESSING')
})

test('a dead letter fitted again (a topology forwarding dead letters) keeps the original sizes, hash and truncation', () => {
  const value = Buffer.alloc(50_000, 9)
  const once = fitDeadLetter(letter(value), 10_000)
  const twice = fitDeadLetter(once, DEFAULT_MAX_MESSAGE_BYTES)
  assert.equal(text(twice, DEAD_LETTER_HEADERS.valueSize), '50000')
  assert.equal(text(twice, DEAD_LETTER_HEADERS.valueSha256), createHash('sha256').update(value).digest('hex'))
  assert.equal(text(twice, DEAD_LETTER_HEADERS.truncated), 'value')
  assert.deepEqual(twice.value, once.value)
  const smaller = fitDeadLetter({ ...once, headers: { ...once.headers, big: 'x'.repeat(5000) } }, 4096)
  assert.equal(text(smaller, DEAD_LETTER_HEADERS.truncated), 'value,headers')
})

test('the failure headers drop the record\'s own weir.* headers and cut the message at 1 KiB without splitting a character', () => {
  const headers = deadLetterHeaders(new WeirError('WEIR_ERR_PROCESSING', 'é'.repeat(2000)), origin({ 'weir.error.code': 'WEIR_ERR_OLD', 'weir.scheduled.id': 's', trace: 't' }))
  assert.equal(headers['weir.scheduled.id'], undefined)
  assert.equal(headers[DEAD_LETTER_HEADERS.code], 'WEIR_ERR_PROCESSING')
  const message = headers[DEAD_LETTER_HEADERS.message] as string
  assert.ok(Buffer.byteLength(message) <= 1024)
  assert.equal(message, 'é'.repeat(512))
  assert.equal(headers.trace?.toString(), 't')
  assert.ok(isDeadLetter({ topic: 'x', value: null, headers }))
  assert.ok(!isDeadLetter({ topic: 'x', value: null, headers: { trace: 't' } }))
})

test('the runtime and the command router write the same dead-letter header set, and both make it fit', async () => {
  const recordHeaders = { trace: 't', 'weir.scheduled.id': 'from-an-earlier-hop' }
  // The runtime's error policy: a processor throws on a record near the broker's limit.
  const failing = defineTopology({
    sources: { in: { topic: 'in', keySerde: 'string', valueSerde: 'buffer' } },
    processors: {
      p: {
        from: ['in'],
        use: () => ({
          process() {
            throw new Error('cannot handle it')
          },
        }),
      },
    },
  })
  const runtimeDriver = await createTestDriver(failing, { errorPolicy: 'dead-letter' })
  await runtimeDriver.pipe('in', { key: 'o-1', value: Buffer.alloc(DEFAULT_MAX_MESSAGE_BYTES - 200, 0xc1), headers: recordHeaders })
  const [runtime] = runtimeDriver.take('in.dlq')
  // The router: a valid envelope naming no handler, as large as the envelope limit allows.
  const service = ordersService({ prefix: 'dl' })
  const routerDriver = await createTestDriver(service.topology, { errorPolicy: 'dead-letter' })
  const command = createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias: 'teleport', payload: { pad: 'p'.repeat(1_048_000) }, requestId: 'r-1', clientSessionId: 's', ttlMs: 60_000, now: routerDriver.now() })
  await routerDriver.pipe('commands', { key: 'o-1', value: command, headers: recordHeaders })
  const [router] = routerDriver.take('dl.commands.dlq')
  assert.ok(runtime && router)
  assert.equal(runtime.headers[DEAD_LETTER_HEADERS.code], 'WEIR_ERR_PROCESSING')
  assert.equal(router.headers[DEAD_LETTER_HEADERS.code], 'WEIR_ERR_UNKNOWN_COMMAND')
  const names = (headers: Record<string, string>) => Object.keys(headers).sort()
  assert.deepEqual(names(runtime.headers), names(router.headers), 'one header set whoever writes it')
  for (const d of [runtime, router]) {
    assert.equal(d.headers['weir.scheduled.id'], undefined, "the record's own weir.* headers are not carried over")
    assert.equal(d.headers.trace, 't', "the record's own other headers are")
    assert.equal(d.headers[DEAD_LETTER_HEADERS.truncated], 'value')
    const bytes = d.value as Buffer
    assert.ok(61 + estimateRecordBytes({ topic: 'x', key: d.key as string, value: bytes, headers: d.headers }) <= DEFAULT_MAX_MESSAGE_BYTES)
  }
})
