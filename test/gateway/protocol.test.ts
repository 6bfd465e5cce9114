// Frame parsing and encoding: the same shapes in JSON and msgpack, every bad input a coded result.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { pack } from 'msgpackr'

import { parseClientFrame } from '../../gateway/client-frame-parser.ts'
import { encodeFrame, parseServerFrame } from '../../gateway/protocol.ts'
import type { ServerFrame } from '../../gateway/protocol.ts'
import { readFileSync } from 'node:fs'

const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))
const MAX = 1024

test('a command parses the same from JSON and msgpack', () => {
  const command = { type: 'command', path: 'orders/sales/place', requestId: 'r-1', payload: { a: [1, 2] }, ttlMs: 500 }
  const fromJson = parseClientFrame(text(command), false, MAX)
  const fromMsgpack = parseClientFrame(pack(command), true, MAX)
  assert.deepEqual(fromJson, { ok: true, frame: command })
  assert.deepEqual(fromMsgpack, fromJson)
})

test('every client frame type parses; unknown fields are ignored', () => {
  const frames = [
    { type: 'subscribe', topic: 'orders' },
    { type: 'subscribe', topic: 'orders', offsets: [{ topic: 't', partition: 1, offset: '9007199254740993' }] },
    { type: 'unsubscribe', topic: 'orders' },
    { type: 'resume', offsets: [{ topic: 't', partition: 0, offset: 12 }] },
    { type: 'auth', token: 'a.b.c' },
  ]
  for (const frame of frames) assert.equal(parseClientFrame(text({ ...frame, extra: 1 }), false, MAX).ok, true, frame.type)
  const resume = parseClientFrame(text(frames[3]), false, MAX)
  assert.deepEqual(resume.ok && resume.frame, { type: 'resume', offsets: [{ topic: 't', partition: 0, offset: '12' }] })
})

test('bad frames give coded errors listing every violation, with the requestId when there is one', () => {
  const cases: Array<[Uint8Array | string, boolean, string]> = [
    ['{"type":', false, 'WEIR_ERR_FRAME_MALFORMED'],
    [new Uint8Array([0xff, 0xfe]), false, 'WEIR_ERR_FRAME_MALFORMED'],
    [new Uint8Array([0xc1]), true, 'WEIR_ERR_FRAME_MALFORMED'],
    [new Uint8Array([0x82, 0xa4, ...Buffer.from('type'), 0xa4, ...Buffer.from('auth'), 0xa5, ...Buffer.from('token'), 0xc1]), true, 'WEIR_ERR_FRAME_MALFORMED'],
    [new Uint8Array([...pack({ type: 'auth', token: 'x' }), 0x01]), true, 'WEIR_ERR_FRAME_MALFORMED'],
    ['"a string"', false, 'WEIR_ERR_FRAME_MALFORMED'],
    ['null', false, 'WEIR_ERR_FRAME_MALFORMED'],
    ['{"type":"launch"}', false, 'WEIR_ERR_FRAME_INVALID'],
    ['{}', false, 'WEIR_ERR_FRAME_INVALID'],
    [JSON.stringify({ type: 'resume', offsets: [{ topic: 't', partition: -1, offset: '1' }] }), false, 'WEIR_ERR_FRAME_INVALID'],
    [JSON.stringify({ type: 'resume', offsets: [{ topic: 't', partition: 0, offset: '01' }] }), false, 'WEIR_ERR_FRAME_INVALID'],
    ['x'.repeat(MAX + 1), false, 'WEIR_ERR_FRAME_TOO_LARGE'],
  ]
  for (const [data, binary, code] of cases) {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
    const parsed = parseClientFrame(bytes, binary, MAX)
    assert.equal(parsed.ok ? 'ok' : parsed.code, code, String(data).slice(0, 40))
  }
  const invalid = parseClientFrame(text({ type: 'command', requestId: 'r-9', ttlMs: -1 }), false, MAX)
  assert.equal(invalid.ok, false)
  if (!invalid.ok) {
    assert.equal(invalid.requestId, 'r-9')
    assert.equal(invalid.violations?.length, 3)
    assert.match(invalid.message, /^invalid command frame: path .*payload is missing.*ttlMs/)
  }
})

test('server frames round-trip in both encodings; offsets stay exact as decimal strings', () => {
  const frame: ServerFrame = {
    type: 'result',
    status: 'ok',
    topic: 'results',
    partition: 3,
    offset: '9223372036854775806',
    id: 'i',
    requestId: 'r',
    contextPath: 'sales',
    alias: 'place',
    payload: { ok: true },
    createdAt: 1,
  }
  assert.deepEqual(parseServerFrame(encodeFrame(frame, 'json') as string, false), frame)
  assert.deepEqual(parseServerFrame(encodeFrame(frame, 'msgpack') as Uint8Array, true), frame)
  assert.equal(parseServerFrame('{"type":"nope"}', false), undefined)
})

test('docs/protocol.md documents every gateway error code', () => {
  const docs = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
  const gatewayCodes = ['FRAME_MALFORMED', 'FRAME_INVALID', 'FRAME_TOO_LARGE', 'RATE_LIMITED', 'UNAUTHENTICATED', 'TOKEN_EXPIRED', 'FORBIDDEN', 'UNKNOWN_TOPIC', 'HANDSHAKE_INVALID', 'DECRYPT']
  const missing = gatewayCodes.map((c) => `WEIR_ERR_${c}`).filter((code) => !docs.includes(`\`${code}\``))
  assert.deepEqual(missing, [])
})

// A map in msgpack as Go's or Java's writers emit it: integers as uint64/int64 whatever their size.
function msgpackMap(entries: Array<[string, Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(0x80 | entries.length)]
  for (const [key, value] of entries) parts.push(pack(key), value)
  return Buffer.concat(parts)
}
const uint64 = (n: number) => Buffer.concat([Uint8Array.of(0xcf), Buffer.from(new BigUint64Array([BigInt(n)]).buffer).reverse()])
const int64 = (n: number) => Buffer.concat([Uint8Array.of(0xd3), Buffer.from(new BigInt64Array([BigInt(n)]).buffer).reverse()])

test('integers encoded as uint64/int64 (Go, Java, Python writers) parse like the compact encodings', () => {
  const command = msgpackMap([
    ['type', pack('command')],
    ['requestId', pack('r-64')],
    ['path', pack('orders/sales/place')],
    ['payload', pack({ n: 1 })],
    ['ttlMs', uint64(1500)],
  ])
  const parsed = parseClientFrame(command, true, MAX)
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.message)
  assert.equal(parsed.frame.type === 'command' && parsed.frame.ttlMs, 1500)

  const resume = msgpackMap([
    ['type', pack('resume')],
    ['offsets', Buffer.concat([Uint8Array.of(0x91), msgpackMap([['topic', pack('results')], ['partition', int64(2)], ['offset', uint64(41)]])])],
  ])
  const resumed = parseClientFrame(resume, true, MAX)
  assert.ok(resumed.ok, resumed.ok ? '' : resumed.message)
  assert.deepEqual(resumed.frame.type === 'resume' && resumed.frame.offsets, [{ topic: 'results', partition: 2, offset: '41' }])

  const fractional = msgpackMap([['type', pack('command')], ['requestId', pack('r-f')], ['path', pack('a/b/c')], ['payload', pack(1)], ['ttlMs', Buffer.concat([Uint8Array.of(0xcb), Buffer.from(new Float64Array([1.5]).buffer).reverse()])]])
  const refused = parseClientFrame(fractional, true, MAX)
  assert.equal(refused.ok, false)
  assert.equal(!refused.ok && refused.code, 'WEIR_ERR_FRAME_INVALID')
})
