// The envelope against a msgpack implementation that is not JavaScript (Debian's python3-msgpack, provided by
// scripts/infra/python-msgpack.ts): vectors it wrote decode to the envelopes docs/envelope.md says, and weir's
// encoder output reads back in Python.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { test } from 'node:test'

import { EnvelopeError } from '../../core/errors.ts'
import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope, followUp } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const GENERATOR = resolve(ROOT, 'scripts/envelope-vectors.py')
const FIXTURE = resolve(ROOT, 'test/fixtures/envelope-vectors.json')
const PYTHON = process.env.WEIR_PYTHON ?? '/usr/bin/python3'

interface Vector {
  name: string
  hex: string
  envelope?: Record<string, unknown>
  error?: { code: string; field: string | null }
}

function loadVectors(text: string): Vector[] {
  return (JSON.parse(text) as { vectors: Vector[] }).vectors
}

function python(args: string[], input?: string): string {
  return execFileSync(PYTHON, [GENERATOR, ...args], { encoding: 'utf8', ...(input === undefined ? {} : { input }), maxBuffer: 64 * 1024 * 1024 })
}

/** An envelope as JSON compares it: binary data as {"$bin": hex}, like the generator writes it. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array || (isBufferJson(v)) ? { $bin: Buffer.from(v instanceof Uint8Array ? v : (v as { data: number[] }).data).toString('hex') } : v)))
}

function isBufferJson(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)
}

test('vectors written by python3-msgpack decode to the expected envelopes, or are refused with the expected code', () => {
  const vectors = loadVectors(readFileSync(FIXTURE, 'utf8'))
  assert.ok(vectors.length > 100, `only ${vectors.length} vectors`)
  let decoded = 0
  let refused = 0
  for (const vector of vectors) {
    const bytes = Buffer.from(vector.hex, 'hex')
    if (vector.envelope !== undefined) {
      let envelope: Envelope
      try {
        envelope = decodeEnvelope(bytes)
      } catch (error) {
        assert.fail(`${vector.name}: refused: ${(error as Error).message}`)
      }
      assert.deepEqual(plain(envelope), vector.envelope, vector.name)
      for (const field of ['createdAt', 'deadline'] as const) {
        if (envelope[field] !== undefined) assert.equal(typeof envelope[field], 'number', `${vector.name}: ${field} is a number`)
      }
      decoded++
    } else {
      const expected = vector.error
      assert.ok(expected !== undefined, vector.name)
      assert.throws(
        () => decodeEnvelope(bytes),
        (error: unknown) => {
          assert.ok(error instanceof EnvelopeError, `${vector.name}: ${String(error)}`)
          assert.equal(error.code, expected.code, `${vector.name}: ${error.message}`)
          const violations = (error.details.violations as string[] | undefined) ?? []
          if (expected.code === 'WEIR_ERR_ENVELOPE_INVALID' && expected.field !== null) {
            assert.ok(
              violations.some((v) => v.startsWith(expected.field as string)),
              `${vector.name}: no violation for ${expected.field}: ${violations.join(' | ')}`,
            )
          }
          return true
        },
        `${vector.name}: decoded although it must be refused`,
      )
      refused++
    }
  }
  assert.ok(decoded > 50 && refused > 30, `${decoded} decoded, ${refused} refused`)
})

test('the generator still writes exactly the committed vectors', () => {
  assert.deepEqual(loadVectors(python([])), loadVectors(readFileSync(FIXTURE, 'utf8')))
})

test("weir's encoder output decodes with python3-msgpack, integers as integers", () => {
  const command = createEnvelope({
    kind: 'command',
    topicAlias: 'orders',
    contextPath: 'shop/cart',
    alias: 'checkout',
    payload: { items: [{ sku: 'x', qty: 2 }], note: 'ünïcødé', blob: Buffer.from([0, 1, 255]), price: 12.5, none: null, yes: true, negative: -40_000 },
    clientSessionId: 'session-9',
    ttlMs: 30_000,
    retry: { outOfOrder: true, count: 2 },
    actor: { sub: 'user-1', roles: ['buyer', 'admin'] },
  })
  const event = followUp(command, { kind: 'event', alias: 'checked-out', payload: 'done' })
  const result = followUp(event, { kind: 'result', alias: 'checkout', payload: { total: 12.5 }, status: 'ok', deadline: Number.MAX_SAFE_INTEGER })
  const minimal = createEnvelope({ kind: 'event', contextPath: '', alias: 'tick', payload: null, now: 0 })
  const envelopes = [command, event, result, minimal]
  const lines = python(['decode'], envelopes.map((e) => encodeEnvelope(e).toString('hex')).join('\n') + '\n').trim().split('\n')
  assert.equal(lines.length, envelopes.length)
  for (const [i, line] of lines.entries()) {
    const document = JSON.parse(line) as Record<string, unknown>
    assert.deepEqual(document, { v: 1, ...(plain(envelopes[i]) as object) }, `envelope ${i}`)
    // Python's json writes an int as 1764633600000 and a float as 1764633600000.0: weir writes integers as msgpack ints.
    for (const field of ['createdAt', 'deadline']) {
      if (field in document) assert.match(line, new RegExp(`"${field}": \\d+[,}]`), `envelope ${i}: ${field} is a msgpack integer`)
    }
    if (i === 2) assert.match(line, /"at": \d+[,}]/, 'breadcrumbs[].at is a msgpack integer')
  }
})
