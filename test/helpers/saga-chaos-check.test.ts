// The saga part of the chaos verdict on synthetic saga events (no broker): a clean run passes, and each kind of
// defect fails exactly the checks that name it.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { ConsumedRecord } from '../../kafka/types.ts'
import { chaosSagaExpectation } from '../fixtures/chaos-saga.ts'
import { SagaChaosTracker, sagaChaosVerdict } from './saga-chaos-check.ts'
import type { FedSaga } from './saga-chaos-check.ts'

const TOPIC = 'chaos.saga-events'

function event(alias: string, payload: Record<string, unknown>): ConsumedRecord {
  const envelope = createEnvelope({ kind: 'event', contextPath: 'sagas', alias, payload })
  return { topic: TOPIC, partition: 0, offset: 0n, timestamp: 0n, key: undefined, value: Buffer.from(encodeEnvelope(envelope)), headers: new Map() }
}

const FED: FedSaga[] = [
  { sagaId: 's-ok', ...chaosSagaExpectation({ failAt: -1 }) },
  { sagaId: 's-fail-c', ...chaosSagaExpectation({ failAt: 2 }) },
  { sagaId: 's-fail-a', ...chaosSagaExpectation({ failAt: 0 }) },
]

/** The events a correct run produces for FED. */
function clean(): ConsumedRecord[] {
  return [
    event('saga-started', { sagaId: 's-ok' }),
    event('saga-completed', { sagaId: 's-ok' }),
    event('saga-started', { sagaId: 's-fail-c' }),
    event('saga-compensating', { sagaId: 's-fail-c' }),
    event('saga-step-compensated', { sagaId: 's-fail-c', step: 'b' }),
    event('saga-step-compensated', { sagaId: 's-fail-c', step: 'a' }),
    event('saga-compensated', { sagaId: 's-fail-c' }),
    event('saga-started', { sagaId: 's-fail-a' }),
    event('saga-compensated', { sagaId: 's-fail-a' }),
  ]
}

function judge(records: ConsumedRecord[], fed = FED) {
  const tracker = new SagaChaosTracker()
  for (const saga of fed) tracker.fed(saga)
  for (const record of records) tracker.add(record)
  const report = tracker.report()
  return { report, failed: sagaChaosVerdict(report), complete: tracker.complete() }
}

test('the expectation of a chaos saga: undo the undoable steps before the failing one, newest first', () => {
  assert.deepEqual(chaosSagaExpectation({ failAt: -1 }), { ends: 'completed', undone: [] })
  assert.deepEqual(chaosSagaExpectation({ failAt: 0 }), { ends: 'compensated', undone: [] })
  assert.deepEqual(chaosSagaExpectation({ failAt: 1 }), { ends: 'compensated', undone: ['a'] })
  assert.deepEqual(chaosSagaExpectation({ failAt: 2 }), { ends: 'compensated', undone: ['b', 'a'] })
})

test('a clean run passes', () => {
  const { report, failed, complete } = judge(clean())
  assert.deepEqual(failed, [])
  assert.ok(complete)
  assert.deepEqual(report, { sagasFed: 3, sagasStarted: 3, sagasCompleted: 1, sagasCompensated: 2, sagasEndedTwice: 0, sagasUnfinished: 0, sagasWrongEnd: 0, sagaEventsUnknown: 0 })
})

test('a saga that ends twice fails sagasEndedTwice (and nothing else)', () => {
  const { failed } = judge([...clean(), event('saga-completed', { sagaId: 's-ok' })])
  assert.deepEqual(failed, ['sagasEndedTwice: 1'])
})

test('a saga that ended both ways fails sagasEndedTwice', () => {
  const { report, failed } = judge([...clean(), event('saga-compensated', { sagaId: 's-ok' })])
  assert.equal(report.sagasEndedTwice, 1)
  assert.deepEqual(failed, ['sagasEndedTwice: 1'])
})

test('a saga started twice counts as ended twice', () => {
  const { failed } = judge([event('saga-started', { sagaId: 's-ok' }), ...clean()])
  assert.deepEqual(failed, ['sagasEndedTwice: 1'])
})

test('a saga without an end fails sagasUnfinished and the sum check; the run is not complete', () => {
  const { failed, complete } = judge(clean().filter((r) => !(r.value?.includes('s-fail-a') && r.value.includes('saga-compensated'))))
  assert.ok(!complete)
  assert.deepEqual(failed, ['sagasUnfinished: 1', 'sagasCompleted + sagasCompensated: 2 of 3 started'])
})

test('a saga that never started fails sagasStarted and sagasUnfinished', () => {
  const { failed } = judge(clean().filter((r) => !r.value?.includes('s-fail-a')))
  assert.deepEqual(failed, ['sagasStarted: 2', 'sagasUnfinished: 1'])
})

test('a wrong end, or compensations in the wrong order, fail sagasWrongEnd', () => {
  const swapped = clean()
  ;[swapped[4], swapped[5]] = [swapped[5] as ConsumedRecord, swapped[4] as ConsumedRecord]
  assert.deepEqual(judge(swapped).failed, ['sagasWrongEnd: 1'])
  const wrong = clean().map((r) => (r.value?.includes('s-fail-a') && r.value.includes('saga-compensated') ? event('saga-completed', { sagaId: 's-fail-a' }) : r))
  assert.deepEqual(judge(wrong).failed, ['sagasWrongEnd: 1'])
})

test('no completed or no compensated saga fails the run: both paths must be exercised', () => {
  const { failed } = judge(clean().filter((r) => !r.value?.includes('s-ok')), FED.slice(1))
  assert.deepEqual(failed, ['sagasCompleted: 0'])
  assert.deepEqual(judge([], []).failed, ['sagasFed: 0', 'sagasCompleted: 0', 'sagasCompensated: 0'])
})

test('unreadable events and events of unknown sagas fail sagaEventsUnknown', () => {
  const garbage: ConsumedRecord = { topic: TOPIC, partition: 0, offset: 0n, timestamp: 0n, key: undefined, value: Buffer.from('not msgpack'), headers: new Map() }
  const { failed } = judge([...clean(), garbage, event('saga-started', { sagaId: 'stranger' })])
  assert.deepEqual(failed, ['sagaEventsUnknown: 2'])
})
