// The chaos run's faults (scripts/chaos/faults.ts) as pure logic: the --faults spec, and the request classes it
// predicts, checked against what the chaos command service really does with the same seeded rule (through the
// test driver); and the classes' verdicts (test/helpers/chaos-faults.ts).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { decodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { createFaultInjector } from '../../processors/faults/injector.ts'
import { createTestDriver } from '../../topology/test-driver.ts'
import { parseChaosFaults, planWithFaults } from '../../scripts/chaos/faults.ts'
import { chaosCommand, chaosCommandService, chaosRequestPlan } from '../fixtures/chaos-command-service.ts'
import type { ChaosWork } from '../fixtures/chaos-command-service.ts'
import { injectedAllowed } from '../helpers/chaos-faults.ts'

test('--faults takes error:<probability>[:<seed>] and refuses anything else with every problem', () => {
  const faults = parseChaosFaults('error:0.25:s1')
  assert.deepEqual(faults?.rule, { id: 'chaos-error', kind: 'error', probability: 0.25, match: { path: 'chaos/chaos/work' }, seed: 's1' })
  assert.deepEqual(faults?.workerArgs, ['--faults', 'true'])
  assert.equal(parseChaosFaults('error:1')?.rule.seed, 'chaos')
  assert.equal(parseChaosFaults(undefined), undefined)
  for (const [spec, pattern] of [
    ['drop:0.1', /only error:<probability>/],
    ['error:1.5', /probability must be a number from 0 to 1/],
    ['error:', /probability must be a number from 0 to 1/],
    ['error:0.1:a:b', /expected error:<probability>\[:<seed>\]/],
  ] as const) {
    assert.throws(() => parseChaosFaults(spec), (error: unknown) => isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS') && pattern.test(error.message), spec)
  }
})

test('the classes planned from the seeded rule are the outcomes the service gives', async () => {
  const faults = parseChaosFaults('error:0.3:unit')
  assert.ok(faults)
  const injector = createFaultInjector()
  injector.arm()
  injector.set(faults.rule)
  const service = chaosCommandService({ prefix: 'cf', retryBaseMs: 10, faults: injector })
  const driver = await createTestDriver(service.topology, { startTime: 1_000_000, errorPolicy: 'fail' })
  const planned = new Map<string, ReturnType<typeof planWithFaults>>()
  for (let i = 0; i < 60; i++) {
    const outOfOrder = i % 2 === 0
    const work: ChaosWork = { workMs: 0, failures: outOfOrder ? i % 5 : 0 }
    const command = createEnvelope({ kind: 'command', ...chaosCommand, payload: work, ...(outOfOrder ? { retry: { outOfOrder: true, count: 0 } } : {}) })
    planned.set(command.requestId, planWithFaults(faults, { requestId: command.requestId, commandId: command.id, ...chaosRequestPlan(work, false) }, work, outOfOrder))
    await driver.pipe('commands', { key: command.requestId, value: command })
  }
  // Out-of-order retries go round the scheduler: feed them back until none is left.
  for (let round = 0; round < 10; round++) {
    for (const request of driver.take(service.topics.scheduler)) await driver.pipe('schedule', { key: 'k', value: request.value })
    await driver.advanceTime(1_000)
    for (const delivery of driver.take(service.topics.commands)) await driver.pipe('commands', { key: 'k', value: decodeEnvelope(delivery.value as Buffer) })
  }
  const outcomes = new Map(driver.take(service.topics.outcomes).map((o) => [(o.value as Envelope).requestId, o.value as Envelope]))
  const counts = { 'fails-injected': 0, fails: 0, succeeds: 0 }
  for (const [requestId, plan] of planned) {
    const outcome = outcomes.get(requestId)
    const code = (outcome?.payload as { code?: string } | undefined)?.code
    if (plan.expect === 'fails-injected') assert.equal(code, 'WEIR_ERR_NON_RETRIABLE', requestId)
    else if (plan.expect === 'fails') assert.equal(code, 'WEIR_ERR_RETRIES_EXHAUSTED', requestId)
    else assert.equal(outcome?.status, 'ok', requestId)
    counts[plan.expect as keyof typeof counts]++
  }
  assert.ok(counts['fails-injected'] > 5 && counts.succeeds > 5, JSON.stringify(counts))
})

test('the injected classes allow the injected error, and a racing one its timeout beside exactly one trace', () => {
  const error = { status: 'error', code: 'WEIR_ERR_NON_RETRIABLE' }
  const timeout = { status: 'timeout', code: 'WEIR_ERR_DEADLINE_EXCEEDED' }
  assert.ok(injectedAllowed('fails-injected', error, [], ['WEIR_ERR_NON_RETRIABLE']))
  assert.ok(!injectedAllowed('fails-injected', error, [], []), 'the dead letter is missing')
  assert.ok(!injectedAllowed('fails-injected', { status: 'error', code: 'WEIR_ERR_RETRIES_EXHAUSTED' }, [], ['WEIR_ERR_RETRIES_EXHAUSTED']))
  assert.ok(!injectedAllowed('fails-injected', { status: 'ok', code: undefined }, [], []))
  assert.ok(!injectedAllowed('fails-injected', timeout, [], ['WEIR_ERR_COMMAND_EXPIRED']))
  assert.ok(injectedAllowed('fails-injected-or-times-out', timeout, [], ['WEIR_ERR_COMMAND_EXPIRED']))
  assert.ok(injectedAllowed('fails-injected-or-times-out', timeout, ['timeout'], ['WEIR_ERR_NON_RETRIABLE']))
  assert.ok(!injectedAllowed('fails-injected-or-times-out', timeout, [], []), 'a timeout without a trace is a lost command')
  assert.ok(!injectedAllowed('fails-injected-or-times-out', timeout, ['timeout'], []))
})
