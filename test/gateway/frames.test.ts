// Command ids and keys (gateway/frames.ts), pure: the id a command gets is what makes sending it again safe, so it
// must depend on exactly (session, requestId). End to end against the orders service: real-worker.test.ts.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { commandId, commandKey } from '../../gateway/frames.ts'

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('commandId is a UUIDv8 of (session, requestId): the same pair gives the same id, any other pair another', () => {
  const id = commandId('s_session-a', 'r-1')
  assert.match(id, UUID_V8)
  assert.equal(commandId('s_session-a', 'r-1'), id, 'deterministic: a command sent again keeps its id')
  const others = [
    commandId('s_session-a', 'r-2'),
    commandId('s_session-b', 'r-1'),
    // The two parts are separated, so moving characters from one to the other is another command.
    commandId('s_session-ar', '-1'),
    commandId('s_session-', 'ar-1'),
  ]
  for (const other of others) assert.match(other, UUID_V8)
  assert.equal(new Set([id, ...others]).size, others.length + 1)
  // Every variant nibble and version appear as RFC 9562 requires, over many inputs.
  for (let n = 0; n < 200; n++) assert.match(commandId(`s_${n}`, `r-${n}`), UUID_V8)
})

test('commandKey is the keyField value when it is a string or number, else the requestId', () => {
  assert.equal(commandKey({ orderId: 'o-1' }, 'orderId', 'r'), 'o-1')
  assert.equal(commandKey({ orderId: 42 }, 'orderId', 'r'), '42')
  for (const payload of [{ orderId: { nested: 1 } }, { orderId: null }, {}, null, 'text', [1]]) assert.equal(commandKey(payload, 'orderId', 'r'), 'r')
  assert.equal(commandKey({ orderId: 'o-1' }, undefined, 'r'), 'r')
})
