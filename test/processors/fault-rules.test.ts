// Fault rules as pure logic: validation of rules and control records (every problem at once, a stable code),
// matching by command path, processor and topic, and probability rolls (seeded: reproducible).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { createFaultInjector } from '../../processors/faults/injector.ts'
import { faultRoll, parseFaultControl, parseFaultRule, parseFaultRules, rollFault, ruleMatches } from '../../processors/faults/rules.ts'

const violationsOf = (fn: () => unknown): string[] => {
  try {
    fn()
  } catch (error) {
    assert.ok(isWeirError(error, 'WEIR_ERR_FAULT_RULE_INVALID'), String(error))
    return error.details.violations as string[]
  }
  assert.fail('expected WEIR_ERR_FAULT_RULE_INVALID')
}

test('a rule takes its defaults and keeps only what its kind uses', () => {
  const rule = parseFaultRule({ id: 'slow', kind: 'delay', delayMs: 250, match: { path: 'orders/*' } })
  assert.deepEqual(rule, { id: 'slow', kind: 'delay', probability: 1, match: { path: 'orders/*' }, delayMs: 250 })
  assert.ok(Object.isFrozen(rule))
  assert.deepEqual(parseFaultRule({ id: 'e', kind: 'error', retriable: true, seed: 7 }), { id: 'e', kind: 'error', probability: 1, match: {}, retriable: true, seed: '7' })
})

test('a malformed rule lists every problem at once', () => {
  const violations = violationsOf(() => parseFaultRule({ id: 'bad id!', kind: 'explode', probability: 1.5, match: { path: '', host: 'x' }, retriable: 'yes', extra: 1 }))
  assert.deepEqual(violations.sort(), [
    'id must be 1-64 letters, digits, ., _ or -',
    'kind must be one of delay, error, drop, duplicate, corrupt',
    'match.path must be a non-empty string',
    'match: unknown field "host"',
    'probability must be a number from 0 to 1',
    'retriable is only for kind error',
    'unknown field "extra"',
  ].sort())
  assert.deepEqual(violationsOf(() => parseFaultRule({ id: 'd', kind: 'delay' })), ['delayMs must be an integer from 0 to 600000 for a delay'])
  assert.deepEqual(violationsOf(() => parseFaultRule({ id: 'd', kind: 'drop', delayMs: 5 })), ['delayMs is only for kind delay'])
  assert.deepEqual(violationsOf(() => parseFaultRule('delay')), ['a rule must be an object'])
})

test('control records: set, delete, clear; anything else is refused with the code', () => {
  assert.deepEqual(parseFaultControl(Buffer.from('{"op":"set","rule":{"id":"a","kind":"drop"}}')), { op: 'set', rule: { id: 'a', kind: 'drop', probability: 1, match: {} } })
  assert.deepEqual(parseFaultControl('{"op":"delete","id":"a"}'), { op: 'delete', id: 'a' })
  assert.deepEqual(parseFaultControl('{"op":"clear"}'), { op: 'clear' })
  assert.match(violationsOf(() => parseFaultControl('{op: set}'))[0] ?? '', /^not JSON/)
  assert.deepEqual(violationsOf(() => parseFaultControl(null)), ['a control record needs a value (JSON)'])
  assert.deepEqual(violationsOf(() => parseFaultControl('[1]')), ['a control record must be a JSON object'])
  assert.deepEqual(violationsOf(() => parseFaultControl('{"op":"pause"}')), ["op must be 'set', 'delete' or 'clear'"])
  assert.deepEqual(violationsOf(() => parseFaultControl('{"op":"delete"}')), ['delete needs the id of a rule'])
  assert.deepEqual(violationsOf(() => parseFaultControl('{"op":"clear","id":"a"}')), ['clear takes no other field'])
  assert.deepEqual(violationsOf(() => parseFaultControl('{"op":"set","rule":{"id":"a","kind":"delay"}}')), ['delayMs must be an integer from 0 to 600000 for a delay'])
})

test('a rules file lists every bad rule and duplicate ids', () => {
  assert.equal(parseFaultRules('{"rules":[{"id":"a","kind":"drop"},{"id":"b","kind":"corrupt"}]}').length, 2)
  const violations = violationsOf(() => parseFaultRules('[{"id":"a","kind":"drop"},{"id":"a","kind":"drop"},{"id":"c"}]'))
  assert.equal(violations.length, 2)
  assert.match(violations[0] ?? '', /^rules\[2\]: invalid fault rule: kind must be/)
  assert.equal(violations[1], 'rule id a is used twice')
})

test('matching: every field the rule names must match; * matches any characters, / included', () => {
  const rule = (match: object) => parseFaultRule({ id: 'r', kind: 'drop', match })
  const point = { path: 'orders/orders/place', processor: 'router', topic: 'orders.commands' }
  assert.ok(ruleMatches(rule({}), point))
  assert.ok(ruleMatches(rule({ path: 'orders/orders/place' }), point))
  assert.ok(ruleMatches(rule({ path: 'orders/*' }), point))
  assert.ok(ruleMatches(rule({ path: '*/place', processor: 'router', topic: '*.commands' }), point))
  assert.ok(!ruleMatches(rule({ path: 'orders/orders/cancel' }), point))
  assert.ok(!ruleMatches(rule({ path: 'orders/orders/place', processor: 'other' }), point))
  assert.ok(!ruleMatches(rule({ topic: 'orders.commands.x' }), point))
  assert.ok(!ruleMatches(rule({ path: 'orders.orders/place' }), { ...point, path: 'ordersXorders/place' }), 'a dot is a dot, not any character')
  assert.ok(!ruleMatches(rule({ path: 'orders/*' }), { processor: 'router' }), 'a point without a path does not match a path rule')
})

test('probability: 0 never, 1 always; a seeded rule rolls the same for the same key, and near its probability overall', () => {
  const rule = (probability: number, seed?: string) => parseFaultRule({ id: 'r', kind: 'drop', probability, ...(seed === undefined ? {} : { seed }) })
  assert.ok(rollFault(rule(1), 'k', () => 0.999))
  assert.ok(!rollFault(rule(0), 'k', () => 0))
  assert.ok(rollFault(rule(0.5), 'k', () => 0.2))
  assert.ok(!rollFault(rule(0.5), 'k', () => 0.7))
  const seeded = rule(0.25, 'chaos-1')
  const first = Array.from({ length: 4000 }, (_, i) => rollFault(seeded, `cmd-${i}#0:1`))
  const again = Array.from({ length: 4000 }, (_, i) => rollFault(seeded, `cmd-${i}#0:1`))
  assert.deepEqual(again, first)
  const hits = first.filter(Boolean).length
  assert.ok(hits > 800 && hits < 1200, `about a quarter of 4000 rolls hit, got ${hits}`)
  assert.notDeepEqual(Array.from({ length: 64 }, (_, i) => rollFault(rule(0.25, 'chaos-2'), `cmd-${i}#0:1`)), first.slice(0, 64), 'another seed rolls otherwise')
  const roll = faultRoll(seeded, 'x')
  assert.ok(roll >= 0 && roll < 1)
})

test('the injector matches nothing until armed and holding a rule; a malformed control record is counted and changes nothing', () => {
  const injector = createFaultInjector()
  const point = { path: 'a/b/c', processor: 'router' }
  assert.equal(injector.active, false)
  assert.equal(injector.applyRecord('{"op":"set","rule":{"id":"a","kind":"drop"}}'), undefined)
  assert.deepEqual(injector.matching(point), [], 'not armed: no rule matches')
  injector.arm()
  assert.equal(injector.active, true)
  assert.deepEqual(injector.matching(point).map((r) => r.id), ['a'])
  const refused = injector.applyRecord('{"op":"set","rule":{"id":"b","kind":"teleport"}}')
  assert.equal(refused?.code, 'WEIR_ERR_FAULT_RULE_INVALID')
  assert.equal(injector.rejected, 1)
  assert.deepEqual(injector.rules().map((r) => r.id), ['a'])
  injector.applyRecord('{"op":"delete","id":"a"}')
  assert.equal(injector.active, false, 'armed without rules: inactive')
  injector.applyRecord('{"op":"set","rule":{"id":"c","kind":"drop"}}')
  injector.applyRecord('{"op":"clear"}')
  assert.deepEqual(injector.rules(), [])
})
