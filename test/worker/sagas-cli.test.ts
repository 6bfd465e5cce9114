// `weir saga` without a broker: arguments are checked before anything connects (exit 2, every problem at once),
// and the text forms of a saga state say where it stands.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import type { SagaState } from '../../processors/saga-state.ts'
import { formatSaga, formatSagaLine, sagaChangelogTopic, sagaMain, sagaPosition } from '../../worker/sagas.ts'

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const stderr: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string) => stderr.push(String(chunk)) > 0) as typeof process.stderr.write
  try {
    let out = ''
    const code = await sagaMain(args, env, (text) => (out += text))
    return { code, out, err: stderr.join('') }
  } finally {
    process.stderr.write = write
  }
}

test('bad arguments exit 2 with every problem, before connecting', async () => {
  const none = await run(['list'])
  assert.equal(none.code, 2)
  assert.match(none.err, /--brokers \(or KAFKA_BOOTSTRAP_SERVERS\) is required; give one of --application and --changelog/)
  const both = await run(['list', '--application', 'a', '--changelog', 'b', '--state', 'done', '--limit', '0'], { KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1' })
  assert.equal(both.code, 2)
  assert.match(both.err, /give one of --application and --changelog; --state must be one of running, compensating, completed, compensated; --limit must be a positive integer/)
  const inspect = await run(['inspect', '--application', 'a', '--state', 'running'], { KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1' })
  assert.equal(inspect.code, 2)
  assert.match(inspect.err, /inspect takes one saga id; --state and --limit belong to list/)
  assert.equal((await run(['lsit'])).code, 2)
  assert.equal((await run(['list', '--bogus'])).code, 2)
})

test('the changelog topic of a saga worker, and the text forms of a state', () => {
  assert.equal(sagaChangelogTopic('orders-order-saga'), 'orders-order-saga-sagas-changelog')
  const state: SagaState = {
    sagaId: 'o-1',
    saga: 'order',
    status: 'compensating',
    data: { sku: 'piano' },
    results: { payment: { chargeId: 'ch-1' } },
    step: 0,
    phase: 'undo',
    attempt: 3,
    undo: [1, 0],
    undoIndex: 1,
    failure: { step: 'shipping', code: 'WEIR_ERR_NON_RETRIABLE', message: 'cannot ship a piano' },
    startedAt: 0,
    updatedAt: 1000,
    requestId: 'r-1',
    parent: { id: 'e', requestId: 'r-1', kind: 'event', contextPath: 'x', alias: 'y', payload: null, createdAt: 0, breadcrumbs: [] },
    history: [
      { at: 0, event: 'started' },
      { at: 500, event: 'compensation-started', step: 'payment', attempt: 3 },
    ],
  }
  assert.equal(sagaPosition(state), 'undo payment (attempt 3)')
  assert.equal(sagaPosition({ ...state, status: 'compensated' }), '-')
  assert.match(formatSagaLine(state), /^o-1 {2}compensating {2}undo payment \(attempt 3\) {2}started 1970-01-01T00:00:00.000Z .* failed at shipping: WEIR_ERR_NON_RETRIABLE$/)
  const text = formatSaga(state)
  assert.match(text, /^saga order o-1: compensating\n/)
  assert.match(text, /failure: shipping: WEIR_ERR_NON_RETRIABLE: cannot ship a piano/)
  assert.match(text, /1970-01-01T00:00:00.500Z {2}compensation-started payment #3/)
})
