// The local broker's helpers that need no broker.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { clusterId } from '../../../scripts/infra/kafka.ts'

test('cluster ids are 22 base64url characters and never start with a dash (the storage tool would read an option)', () => {
  for (let i = 0; i < 5000; i++) {
    const id = clusterId()
    assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
  }
})
