import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'

import { EnvelopeError, isWeirError } from '../../core/errors.ts'
import { ENVELOPE_SCHEMA_VERSION, createEnvelopeCodec, decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope, followUp } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { Packr } from 'msgpackr'

const packr = new Packr({ useRecords: false })

function sample(): Envelope {
  const command = createEnvelope({
    kind: 'command',
    topicAlias: 'orders',
    contextPath: 'shop/cart',
    alias: 'checkout',
    payload: { items: [{ sku: 'x', qty: 2 }], note: 'ünïcødé', blob: Buffer.from([0, 1, 255]), big: 2 ** 40 },
    clientSessionId: 'session-9',
    ttlMs: 30_000,
    retry: { outOfOrder: true, count: 2 },
  })
  return followUp(command, { kind: 'result', alias: 'checkout', payload: { total: 12.5 }, status: 'ok' })
}

function expectCode(fn: () => unknown, code: string): EnvelopeError {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof EnvelopeError, `expected EnvelopeError, got ${String(error)}`)
    assert.equal(error.code, code, error.message)
    return error
  }
  assert.fail(`expected ${code}, nothing was thrown`)
}

test('encode then decode gives the same envelope', () => {
  for (const envelope of [sample(), createEnvelope({ kind: 'event', contextPath: '', alias: 'tick', payload: null })]) {
    const decoded = decodeEnvelope(encodeEnvelope(envelope))
    assert.deepEqual({ ...decoded, payload: normalize(decoded.payload) }, { ...envelope, payload: normalize(envelope.payload) })
  }
})

test('the wire document carries the schema version', () => {
  const document = packr.unpack(encodeEnvelope(sample())) as Record<string, unknown>
  assert.equal(document.v, ENVELOPE_SCHEMA_VERSION)
})

test('size limit applies on encode and on decode, and decode keeps the raw bytes', () => {
  const codec = createEnvelopeCodec({ maxBytes: 256 })
  const big = createEnvelope({ kind: 'event', contextPath: 'c', alias: 'a', payload: 'x'.repeat(1000) })
  expectCode(() => codec.encode(big), 'WEIR_ERR_ENVELOPE_TOO_LARGE')
  const bytes = encodeEnvelope(big)
  const error = expectCode(() => codec.decode(bytes), 'WEIR_ERR_ENVELOPE_TOO_LARGE')
  assert.equal(error.raw, bytes)
  assert.throws(() => createEnvelopeCodec({ maxBytes: 3 }), (e: unknown) => isWeirError(e, 'WEIR_ERR_INVALID_OPTIONS'))
})

test('a newer schema version is reported as such', () => {
  const wire = packr.pack({ ...sample(), v: ENVELOPE_SCHEMA_VERSION + 1 })
  const error = expectCode(() => decodeEnvelope(wire), 'WEIR_ERR_ENVELOPE_VERSION')
  assert.equal(error.details.version, ENVELOPE_SCHEMA_VERSION + 1)
})

test('a decodable document that is not an envelope lists every violation', () => {
  const wire = packr.pack({ v: 1, id: '', kind: 'query', alias: 7, breadcrumbs: 'none', createdAt: -1 })
  const error = expectCode(() => decodeEnvelope(wire), 'WEIR_ERR_ENVELOPE_INVALID')
  const violations = error.details.violations as string[]
  for (const field of ['id', 'requestId', 'kind', 'contextPath', 'alias', 'payload', 'createdAt', 'breadcrumbs']) {
    assert.ok(
      violations.some((v) => v.startsWith(field)),
      `no violation reported for ${field}: ${violations.join(' | ')}`,
    )
  }
  for (const notAMap of [packr.pack([1, 2]), packr.pack('text'), packr.pack(null)]) expectCode(() => decodeEnvelope(notAMap), 'WEIR_ERR_ENVELOPE_INVALID')
  expectCode(() => decodeEnvelope(packr.pack({ ...sample(), v: undefined })), 'WEIR_ERR_ENVELOPE_INVALID')
})

test('empty, truncated and trailing-garbage bytes are decode errors with the raw bytes kept', () => {
  const bytes = encodeEnvelope(sample())
  expectCode(() => decodeEnvelope(new Uint8Array()), 'WEIR_ERR_ENVELOPE_DECODE')
  const truncated = bytes.subarray(0, bytes.length - 3)
  assert.equal(expectCode(() => decodeEnvelope(truncated), 'WEIR_ERR_ENVELOPE_DECODE').raw, truncated)
  expectCode(() => decodeEnvelope(Buffer.concat([bytes, Buffer.from([0xc0])])), 'WEIR_ERR_ENVELOPE_DECODE')
})

test('the never-used byte 0xc1 is a decode error wherever it stands, and binary data holding it is not', () => {
  expectCode(() => decodeEnvelope(Buffer.from([0xc1])), 'WEIR_ERR_ENVELOPE_DECODE')
  const wire = packr.pack({ ...sample(), v: ENVELOPE_SCHEMA_VERSION, payload: { note: 'x' } }) as Buffer
  const marker = wire.indexOf(Buffer.from([0xa1, 0x78]))
  const withC1 = Buffer.concat([wire.subarray(0, marker), Buffer.from([0xc1]), wire.subarray(marker + 2)])
  expectCode(() => decodeEnvelope(withC1), 'WEIR_ERR_ENVELOPE_DECODE')
  const binary = { ...sample(), payload: { blob: Buffer.from([0xc1, 0xc1]) } }
  assert.deepEqual(decodeEnvelope(encodeEnvelope(binary)).payload, { blob: Buffer.from([0xc1, 0xc1]) })
})

test('encoding an invalid envelope is refused', () => {
  const broken = { ...sample(), kind: 'nope' } as unknown as Envelope
  expectCode(() => encodeEnvelope(broken), 'WEIR_ERR_ENVELOPE_INVALID')
})

test('thousands of random and truncated byte strings only ever produce the coded error', () => {
  const valid = [sample(), createEnvelope({ kind: 'command', contextPath: 'a/b', alias: 'c', payload: [1, 'two', { three: 3 }] })].map((e) =>
    encodeEnvelope(e),
  )
  const seen = new Map<string, number>()
  let decodedOk = 0
  const inputs: Uint8Array[] = []
  for (let i = 0; i < 6000; i++) inputs.push(randomBytes(1 + (i % 512)))
  for (const bytes of valid) {
    for (let cut = 0; cut < bytes.length; cut++) inputs.push(bytes.subarray(0, cut))
    // Bit flips inside an otherwise valid envelope.
    for (let i = 0; i < 1500; i++) {
      const copy = Buffer.from(bytes)
      const at = i % copy.length
      copy[at] = (copy[at] as number) ^ (1 << (i % 8))
      inputs.push(copy)
    }
  }
  for (const bytes of inputs) {
    try {
      decodeEnvelope(bytes)
      decodedOk++
    } catch (error) {
      assert.ok(error instanceof EnvelopeError, `non-coded error escaped for ${Buffer.from(bytes).toString('hex').slice(0, 80)}: ${String(error)}`)
      assert.equal(error.raw, bytes)
      seen.set(error.code, (seen.get(error.code) ?? 0) + 1)
    }
  }
  assert.ok(inputs.length > 8000)
  assert.ok((seen.get('WEIR_ERR_ENVELOPE_DECODE') ?? 0) > 1000, JSON.stringify([...seen]))
  // Some bit flips land in payload bytes and still decode to a valid envelope: that is fine.
  assert.ok(decodedOk < inputs.length / 2)
})

function normalize(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? { bytes: [...v] } : v)))
}

test('the actor round-trips, is validated on decode, and is not inherited by follow-ups', () => {
  const command = createEnvelope({ kind: 'command', contextPath: 'shop', alias: 'buy', payload: {}, actor: { sub: 'user-1', roles: ['buyer', 'admin'] } })
  const decoded = decodeEnvelope(encodeEnvelope(command))
  assert.deepEqual(decoded.actor, { sub: 'user-1', roles: ['buyer', 'admin'] })
  const wire = packr.unpack(encodeEnvelope(command)) as Record<string, unknown>
  assert.deepEqual(wire.actor, { sub: 'user-1', roles: ['buyer', 'admin'] })
  assert.equal(followUp(command, { kind: 'result', alias: 'buy', payload: null, status: 'ok' }).actor, undefined)
  assert.deepEqual(followUp(command, { kind: 'command', alias: 'ship', payload: null, actor: command.actor }).actor, command.actor)
  const withoutActor = decodeEnvelope(encodeEnvelope(createEnvelope({ kind: 'command', contextPath: 'shop', alias: 'buy', payload: {} })))
  assert.equal('actor' in withoutActor, false)

  const plain = { ...sample(), v: ENVELOPE_SCHEMA_VERSION }
  for (const actor of ['user-1', { sub: 'user-1' }, { sub: '', roles: [] }, { sub: 7, roles: [] }, { sub: 'u', roles: 'admin' }, { sub: 'u', roles: [1] }, { sub: 'u', roles: [''] }, []]) {
    const error = expectCode(() => decodeEnvelope(packr.pack({ ...plain, actor })), 'WEIR_ERR_ENVELOPE_INVALID')
    assert.ok((error.details.violations as string[]).some((v) => v.startsWith('actor')), JSON.stringify(actor))
  }
  assert.deepEqual(decodeEnvelope(packr.pack({ ...plain, actor: { sub: 'u', roles: [] } })).actor, { sub: 'u', roles: [] })
  expectCode(() => encodeEnvelope({ ...sample(), actor: { sub: 'u', roles: [3] } } as unknown as Envelope), 'WEIR_ERR_ENVELOPE_INVALID')
})

test('nil in an optional field means absent; nil in a required one is refused', () => {
  const plain = { ...sample(), v: ENVELOPE_SCHEMA_VERSION }
  const decoded = decodeEnvelope(packr.pack({ ...plain, clientSessionId: null, topicAlias: null, deadline: null, retry: null, trace: null, actor: null, status: null, kind: 'event' }))
  for (const field of ['clientSessionId', 'topicAlias', 'deadline', 'retry', 'trace', 'actor', 'status']) assert.equal(field in decoded, false, field)
  assert.equal(decodeEnvelope(packr.pack({ ...plain, payload: null })).payload, null)
  for (const field of ['id', 'requestId', 'kind', 'contextPath', 'alias', 'createdAt', 'breadcrumbs']) {
    const error = expectCode(() => decodeEnvelope(packr.pack({ ...plain, [field]: null })), 'WEIR_ERR_ENVELOPE_INVALID')
    assert.ok((error.details.violations as string[]).some((v) => v.startsWith(field)), field)
  }
})
