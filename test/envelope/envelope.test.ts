import assert from 'node:assert/strict'
import { test } from 'node:test'

import { MAX_BREADCRUMBS, createEnvelope, followUp, spanFrom, spanId, traceId } from '../../envelope/envelope.ts'

test('createEnvelope fills id, requestId, createdAt, deadline from TTL and a W3C trace', () => {
  const envelope = createEnvelope({ kind: 'command', contextPath: 'orders', alias: 'place', payload: { sku: 'a' }, ttlMs: 5000, now: 1_000 })
  assert.match(envelope.id, /^[0-9a-f-]{36}$/)
  assert.equal(envelope.requestId, envelope.id, 'a message that starts a process is its own request')
  assert.equal(envelope.createdAt, 1_000)
  assert.equal(envelope.deadline, 6_000)
  assert.deepEqual(envelope.breadcrumbs, [])
  assert.match(envelope.trace?.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
  assert.ok(Object.isFrozen(envelope))
})

test('followUp carries requestId, client session and trace, and appends the parent as a breadcrumb', () => {
  const command = createEnvelope({
    kind: 'command',
    contextPath: 'orders',
    alias: 'place',
    payload: {},
    clientSessionId: 'session-1',
    requestId: 'req-1',
    ttlMs: 1000,
    trace: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=1' },
  })
  const event = followUp(command, { kind: 'event', alias: 'placed', payload: { ok: true } })
  const result = followUp(event, { kind: 'result', alias: 'place', payload: {}, status: 'ok' })

  for (const message of [event, result]) {
    assert.equal(message.requestId, 'req-1')
    assert.equal(message.clientSessionId, 'session-1')
    assert.equal(message.contextPath, 'orders')
    assert.equal(message.trace && traceId(message.trace), '0af7651916cd43dd8448eb211c80319c')
    assert.equal(message.trace?.tracestate, 'vendor=1')
    assert.equal(message.deadline, undefined, 'follow-ups do not inherit the deadline')
  }
  assert.notEqual(event.id, command.id)
  assert.notEqual(event.trace && spanId(event.trace), 'b7ad6b7169203331', 'a follow-up is a new span')
  assert.deepEqual(
    result.breadcrumbs.map((b) => [b.id, b.kind, b.alias]),
    [
      [command.id, 'command', 'place'],
      [event.id, 'event', 'placed'],
    ],
  )
  assert.equal(command.breadcrumbs.length, 0, 'the parent is not modified')
})

test('breadcrumbs keep the newest MAX_BREADCRUMBS ancestors', () => {
  let message = createEnvelope({ kind: 'event', contextPath: 'c', alias: 'e0', payload: null })
  const ids = [message.id]
  for (let i = 1; i <= MAX_BREADCRUMBS + 5; i++) {
    message = followUp(message, { kind: 'event', alias: `e${i}`, payload: null })
    ids.push(message.id)
  }
  assert.equal(message.breadcrumbs.length, MAX_BREADCRUMBS)
  assert.deepEqual(
    message.breadcrumbs.map((b) => b.id),
    ids.slice(-MAX_BREADCRUMBS - 1, -1),
  )
})

test('spanFrom continues a valid traceparent as a child span and starts a new trace otherwise', () => {
  const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00'
  const child = spanFrom(parent)
  assert.equal(traceId(child), '0af7651916cd43dd8448eb211c80319c')
  assert.notEqual(spanId(child), 'b7ad6b7169203331')
  assert.match(child.traceparent, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/, 'flags kept')
  const ids = new Set<string>()
  for (const invalid of [undefined, 'nonsense', '00-00000000000000000000000000000000-b7ad6b7169203331-01']) {
    const fresh = spanFrom(invalid)
    assert.match(fresh.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    assert.notEqual(traceId(fresh), '00000000000000000000000000000000')
    ids.add(traceId(fresh) as string)
  }
  assert.equal(ids.size, 3, 'each new trace has its own id')
})
