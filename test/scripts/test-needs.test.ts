// test/needs.ts is complete and true: every test file is declared, and none reads a variable of a need it does not
// declare, so `npm run test:unit` never runs a file that needs a broker, Redis, Python or Chromium.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { inferNeeds, NEEDS, selectTests, testFiles } from '../../scripts/lib/test-needs.ts'
import { TEST_NEEDS } from '../needs.ts'

test('every test file is declared in test/needs.ts, and every declared file exists', () => {
  assert.deepEqual(Object.keys(TEST_NEEDS).sort(), testFiles())
})

test("a file's declared needs include every need it shows (a read of KAFKA_BOOTSTRAP_SERVERS, REDIS_URL, ...)", () => {
  const missing: string[] = []
  for (const file of testFiles()) {
    const declared = TEST_NEEDS[file] ?? []
    for (const need of inferNeeds(file)) if (!declared.includes(need)) missing.push(`${file} needs ${need}`)
  }
  assert.deepEqual(missing, [], 'add these needs to test/needs.ts')
})

test('the shared Kafka helpers show the kafka need (the scan follows relative imports under test/)', () => {
  assert.deepEqual(inferNeeds('test/kafka/admin.test.ts'), ['kafka'])
  assert.deepEqual(inferNeeds('test/core/errors.test.ts'), [])
})

test('a selection starts only what its files need; an undeclared file counts as needing everything', () => {
  assert.deepEqual(selectTests(['test/core', 'test/envelope/vectors.test.ts'], TEST_NEEDS).needs, ['python'])
  const unit = selectTests(['--unit'], TEST_NEEDS)
  assert.deepEqual(unit.needs, [])
  assert.ok(unit.files.includes('test/core/errors.test.ts') && !unit.files.includes('test/kafka/admin.test.ts'))
  assert.deepEqual(selectTests(['test/new.test.ts'], TEST_NEEDS).needs, [...NEEDS])
  assert.deepEqual(selectTests([], TEST_NEEDS).needs, [...NEEDS])
})
