// Fault rules and the control records that change them (docs/faults.md): what a rule may say, its
// validation (every problem at once, WEIR_ERR_FAULT_RULE_INVALID), and which injection points it matches.
import { createHash } from 'node:crypto'

import { WeirError } from '../../core/errors.ts'

export const FAULT_KINDS = ['delay', 'error', 'drop', 'duplicate', 'corrupt'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** Where a rule applies; every field given must match (a `*` matches any characters, `/` included). */
export interface FaultMatch {
  /** Command path, `<topicAlias>/<contextPath>/<alias>`. */
  readonly path?: string
  /** Name of the processor in the topology (the command service's router is `router`). */
  readonly processor?: string
  /** Topic the record was read from. */
  readonly topic?: string
}

export interface FaultRule {
  readonly id: string
  readonly kind: FaultKind
  /** Chance that one roll injects the fault, 0..1 (default 1). */
  readonly probability: number
  readonly match: FaultMatch
  /** delay: how long each matching attempt waits before the handler runs, ms. */
  readonly delayMs?: number
  /** error: true throws an error the router retries; false (default) a non-retriable one. */
  readonly retriable?: boolean
  /** With a seed every roll is a function of (seed, rule id, record, delivery, attempt): reproducible runs. */
  readonly seed?: string
}

/** One control record: set (add or replace by id), delete one rule, or clear all. */
export type FaultControl = { readonly op: 'set'; readonly rule: FaultRule } | { readonly op: 'delete'; readonly id: string } | { readonly op: 'clear' }

const RULE_ID = /^[A-Za-z0-9._-]{1,64}$/
const RULE_FIELDS = new Set(['id', 'kind', 'probability', 'match', 'delayMs', 'retriable', 'seed'])
const MATCH_FIELDS = new Set(['path', 'processor', 'topic'])
/** Longest injected delay: a delay holds its task (and every partition behind it in the loop) that long. */
export const MAX_FAULT_DELAY_MS = 600_000

function ruleInvalid(violations: readonly string[], input: unknown): WeirError {
  return new WeirError('WEIR_ERR_FAULT_RULE_INVALID', `invalid fault rule: ${violations.join('; ')}`, { details: { violations: [...violations], input } })
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Validates one rule (as parsed from JSON); throws WEIR_ERR_FAULT_RULE_INVALID listing every problem. */
export function parseFaultRule(input: unknown): FaultRule {
  if (!isObject(input)) throw ruleInvalid(['a rule must be an object'], input)
  const violations: string[] = []
  for (const field of Object.keys(input)) if (!RULE_FIELDS.has(field)) violations.push(`unknown field ${JSON.stringify(field)}`)
  const { id, kind, probability = 1, match = {}, delayMs, retriable, seed } = input
  if (typeof id !== 'string' || !RULE_ID.test(id)) violations.push('id must be 1-64 letters, digits, ., _ or -')
  if (typeof kind !== 'string' || !(FAULT_KINDS as readonly string[]).includes(kind)) violations.push(`kind must be one of ${FAULT_KINDS.join(', ')}`)
  if (typeof probability !== 'number' || !(probability >= 0 && probability <= 1)) violations.push('probability must be a number from 0 to 1')
  if (!isObject(match)) violations.push('match must be an object')
  else {
    for (const [field, value] of Object.entries(match)) {
      if (!MATCH_FIELDS.has(field)) violations.push(`match: unknown field ${JSON.stringify(field)}`)
      else if (typeof value !== 'string' || value.length === 0) violations.push(`match.${field} must be a non-empty string`)
    }
  }
  if (kind === 'delay') {
    if (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > MAX_FAULT_DELAY_MS) violations.push(`delayMs must be an integer from 0 to ${MAX_FAULT_DELAY_MS} for a delay`)
  } else if (delayMs !== undefined) violations.push('delayMs is only for kind delay')
  if (kind === 'error') {
    if (retriable !== undefined && typeof retriable !== 'boolean') violations.push('retriable must be true or false')
  } else if (retriable !== undefined) violations.push('retriable is only for kind error')
  if (seed !== undefined && (typeof seed !== 'string' || seed.length === 0) && !Number.isSafeInteger(seed)) violations.push('seed must be a non-empty string or an integer')
  if (violations.length > 0) throw ruleInvalid(violations, input)
  return Object.freeze({
    id: id as string,
    kind: kind as FaultKind,
    probability: probability as number,
    match: Object.freeze({ ...(match as FaultMatch) }),
    ...(delayMs === undefined ? {} : { delayMs: delayMs as number }),
    ...(retriable === undefined ? {} : { retriable: retriable as boolean }),
    ...(seed === undefined ? {} : { seed: String(seed) }),
  })
}

/**
 * Decodes one control record's value: UTF-8 JSON, `{"op":"set","rule":{...}}`, `{"op":"delete","id":"..."}` or
 * `{"op":"clear"}`. Throws WEIR_ERR_FAULT_RULE_INVALID for anything else.
 */
export function parseFaultControl(value: Uint8Array | string | null | undefined): FaultControl {
  if (value === null || value === undefined || value.length === 0) throw ruleInvalid(['a control record needs a value (JSON)'], null)
  const text = typeof value === 'string' ? value : Buffer.from(value).toString('utf8')
  let input: unknown
  try {
    input = JSON.parse(text)
  } catch (error) {
    throw ruleInvalid([`not JSON: ${(error as Error).message}`], text.slice(0, 200))
  }
  if (!isObject(input)) throw ruleInvalid(['a control record must be a JSON object'], input)
  const extra = Object.keys(input).filter((field) => !['op', 'rule', 'id'].includes(field))
  const unknown = extra.map((field) => `unknown field ${JSON.stringify(field)}`)
  if (input.op === 'set') {
    if (unknown.length > 0 || input.id !== undefined) throw ruleInvalid([...unknown, ...(input.id === undefined ? [] : ['set takes the id inside rule'])], input)
    return Object.freeze({ op: 'set', rule: parseFaultRule(input.rule) })
  }
  if (input.op === 'delete') {
    const violations = [...unknown, ...(typeof input.id === 'string' && RULE_ID.test(input.id) ? [] : ['delete needs the id of a rule']), ...(input.rule === undefined ? [] : ['delete takes no rule'])]
    if (violations.length > 0) throw ruleInvalid(violations, input)
    return Object.freeze({ op: 'delete', id: input.id as string })
  }
  if (input.op === 'clear') {
    if (unknown.length > 0 || input.rule !== undefined || input.id !== undefined) throw ruleInvalid(['clear takes no other field'], input)
    return Object.freeze({ op: 'clear' })
  }
  throw ruleInvalid(["op must be 'set', 'delete' or 'clear'"], input)
}

/** Reads a rules file's text: a JSON array of rules, or `{"rules": [...]}`. Every bad rule is listed at once. */
export function parseFaultRules(text: string): FaultRule[] {
  let input: unknown
  try {
    input = JSON.parse(text)
  } catch (error) {
    throw ruleInvalid([`not JSON: ${(error as Error).message}`], text.slice(0, 200))
  }
  const list = Array.isArray(input) ? input : isObject(input) && Array.isArray(input.rules) ? input.rules : undefined
  if (list === undefined) throw ruleInvalid(['a rules file is a JSON array of rules or {"rules": [...]}'], input)
  const rules: FaultRule[] = []
  const violations: string[] = []
  list.forEach((item, index) => {
    try {
      rules.push(parseFaultRule(item))
    } catch (error) {
      violations.push(`rules[${index}]: ${(error as WeirError).message}`)
    }
  })
  const ids = rules.map((r) => r.id)
  for (const id of new Set(ids.filter((id, i) => ids.indexOf(id) !== i))) violations.push(`rule id ${id} is used twice`)
  if (violations.length > 0) throw ruleInvalid(violations, input)
  return rules
}

/** What an injection point knows about the record in hand. */
export interface FaultPoint {
  readonly path?: string
  readonly processor: string
  readonly topic?: string
}

const patterns = new Map<string, RegExp>()

function globMatches(pattern: string, value: string | undefined): boolean {
  if (value === undefined) return false
  if (!pattern.includes('*')) return pattern === value
  let regex = patterns.get(pattern)
  if (regex === undefined) {
    regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`)
    patterns.set(pattern, regex)
  }
  return regex.test(value)
}

/** Whether a rule applies at a point: each field the rule names must match (a field the point lacks does not). */
export function ruleMatches(rule: FaultRule, point: FaultPoint): boolean {
  const { path, processor, topic } = rule.match
  return (path === undefined || globMatches(path, point.path)) && (processor === undefined || globMatches(processor, point.processor)) && (topic === undefined || globMatches(topic, point.topic))
}

/**
 * One roll of a rule for one record: with a seed, SHA-256 of (seed, rule id, roll key) read as a number in
 * [0, 1), so the same record, delivery and attempt rolls the same in any process and after any restart; without
 * one, Math.random().
 */
export function rollFault(rule: FaultRule, rollKey: string, random: () => number = Math.random): boolean {
  if (rule.probability >= 1) return true
  if (rule.probability <= 0) return false
  return faultRoll(rule, rollKey, random) < rule.probability
}

export function faultRoll(rule: Pick<FaultRule, 'id' | 'seed'>, rollKey: string, random: () => number = Math.random): number {
  if (rule.seed === undefined) return random()
  const digest = createHash('sha256').update(`${rule.seed}\u0000${rule.id}\u0000${rollKey}`).digest()
  return digest.readUIntBE(0, 6) / 2 ** 48
}
