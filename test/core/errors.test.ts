import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { EnvelopeError, WeirError, errorCodes, invalidOptions, isWeirError } from '../../core/errors.ts'

test('docs/errors.md lists exactly the codes core/errors.ts defines', () => {
  const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
  const documented = new Set([...docs.matchAll(/^\| `(WEIR_ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]))
  const defined = new Set(Object.keys(errorCodes))
  assert.deepEqual([...defined].filter((c) => !documented.has(c)), [], 'codes missing from docs/errors.md')
  assert.deepEqual([...documented].filter((c) => !defined.has(c as string)), [], 'codes documented but not defined')
})

test('errors carry code, details and cause, and serialize to JSON', () => {
  const cause = new Error('socket hang up')
  const error = new WeirError('WEIR_ERR_KAFKA', 'send failed', { cause, details: { topic: 't' } })
  assert.equal(error.code, 'WEIR_ERR_KAFKA')
  assert.equal(error.cause, cause)
  assert.ok(isWeirError(error, 'WEIR_ERR_KAFKA'))
  assert.ok(!isWeirError(error, 'WEIR_ERR_TIMEOUT'))
  assert.deepEqual(JSON.parse(JSON.stringify(error)), {
    name: 'WeirError',
    code: 'WEIR_ERR_KAFKA',
    message: 'send failed',
    details: { topic: 't' },
    cause: { name: 'Error', message: 'socket hang up' },
  })
  assert.equal(new WeirError('WEIR_ERR_CLOSED').message, errorCodes.WEIR_ERR_CLOSED)
})

test('invalidOptions reports every violation at once', () => {
  const error = invalidOptions('Thing', ['a is required', 'b must be positive'])
  assert.equal(error.code, 'WEIR_ERR_INVALID_OPTIONS')
  assert.deepEqual(error.details.violations, ['a is required', 'b must be positive'])
  assert.match(error.message, /a is required; b must be positive/)
})

test('EnvelopeError keeps the raw bytes', () => {
  const raw = new Uint8Array([1, 2, 3])
  const error = new EnvelopeError('WEIR_ERR_ENVELOPE_DECODE', raw)
  assert.equal(error.raw, raw)
  assert.ok(error instanceof WeirError)
  assert.equal(JSON.parse(JSON.stringify(error)).rawLength, 3)
})
