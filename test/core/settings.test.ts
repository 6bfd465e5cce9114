import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { readSettings } from '../../core/settings.ts'

const settings = [
  { flag: 'port', env: 'T_PORT', default: '80', help: 'port' },
  { flag: 'name', env: 'T_NAME', default: '(none)', help: 'name' },
] as const

test('a flag wins over its environment variable; an empty variable counts as unset', () => {
  const both = readSettings('svc', settings, ['--port', '81'], { T_PORT: '82', T_NAME: '' })
  assert.equal(both.value('port'), '81')
  assert.equal(both.value('name'), undefined)
  const fromEnv = readSettings('svc', settings, [], { T_PORT: '82' })
  assert.equal(fromEnv.integer('port', 80, 0), 82)
  assert.deepEqual(fromEnv.violations, [])
})

test('bad integers are collected as violations and the fallback is used', () => {
  const reader = readSettings('svc', settings, ['--port=-1', '--name', 'x'], { T_PORT: 'ignored' })
  assert.equal(reader.integer('port', 80, 0), 80)
  assert.equal(reader.integer('name', 5, 1), 5)
  assert.deepEqual(reader.violations, ['--port must be an integer >= 0, got "-1"', '--name must be an integer >= 1, got "x"'])
})

test('booleans are true or false; anything else is a violation and the fallback is used', () => {
  const reader = readSettings('svc', settings, ['--port', 'false', '--name', 'yes'], {})
  assert.equal(reader.boolean('port', true), false)
  assert.equal(reader.boolean('name', true), true)
  assert.equal(readSettings('svc', settings, [], {}).boolean('port', true), true)
  assert.deepEqual(reader.violations, ['--name must be true or false, got "yes"'])
})

test('an unknown flag or a positional where none is allowed is a coded error naming the service', () => {
  for (const argv of [['--nope', '1'], ['extra']]) {
    assert.throws(
      () => readSettings('svc', settings, argv, {}),
      (error: unknown) => isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS') && /svc/.test((error as Error).message),
    )
  }
  assert.deepEqual(readSettings('svc', settings, ['a.ts', '--port', '1'], {}, { allowPositionals: true }).positionals, ['a.ts'])
})
