// The fault injector of one process: the rules in force, whether injection is armed, and what was injected.
// A topology gets it as an option (commandService({ faults })); it injects nothing until armed (the worker arms
// it with --faults on), and an unarmed or empty injector costs one property read per record.
import { channels, publish } from '../../core/diagnostics.ts'
import type { FaultInjectedMessage, FaultRuleMessage } from '../../core/diagnostics.ts'
import { WeirError } from '../../core/errors.ts'
import { parseFaultControl, ruleMatches } from './rules.ts'
import type { FaultControl, FaultKind, FaultPoint, FaultRule } from './rules.ts'

/** Header every record a fault touched carries: `<kind>:<rule id>`, several joined by `,`. */
export const FAULT_HEADER = 'weir.fault'

export interface FaultInjection {
  readonly kind: FaultKind
  readonly rule: string
  readonly count: number
}

export interface FaultInjector {
  /** True once armed and holding at least one rule: the only check on the hot path. */
  readonly active: boolean
  readonly armed: boolean
  arm(): void
  disarm(): void
  set(rule: FaultRule): void
  delete(id: string): boolean
  clear(): void
  rules(): FaultRule[]
  /** Applies a decoded control record. */
  apply(control: FaultControl): void
  /**
   * Decodes and applies one control record's value; a malformed one is counted, published on the faults
   * channel (`rejected`) and returned as its error, and changes nothing.
   */
  applyRecord(value: Uint8Array | string | null | undefined, source?: { topic?: string; partition?: number; offset?: bigint }): WeirError | undefined
  /** The armed rules that apply at a point, in the order they were set. */
  matching(point: FaultPoint): FaultRule[]
  /** Counts an injection and publishes it (the caller injected it). */
  injected(rule: FaultRule, point: FaultPoint, requestId?: string): void
  /** Injections so far, by kind and rule (from this process's start, redone work included). */
  injections(): FaultInjection[]
  /** Control records refused as malformed. */
  readonly rejected: number
}

export function createFaultInjector(options: { rules?: readonly FaultRule[] } = {}): FaultInjector {
  const rules = new Map<string, FaultRule>()
  for (const rule of options.rules ?? []) rules.set(rule.id, rule)
  const counts = new Map<string, { kind: FaultKind; rule: string; count: number }>()
  let armed = false
  let active = false
  let rejected = 0
  const refresh = () => {
    active = armed && rules.size > 0
  }
  const injector: FaultInjector = {
    get active() {
      return active
    },
    get armed() {
      return armed
    },
    get rejected() {
      return rejected
    },
    arm() {
      armed = true
      refresh()
    },
    disarm() {
      armed = false
      refresh()
    },
    set(rule) {
      // Replacing keeps the insertion order of a new rule: the latest set comes last.
      rules.delete(rule.id)
      rules.set(rule.id, rule)
      refresh()
      publish<FaultRuleMessage>(channels.faultRule, { op: 'set', rule })
    },
    delete(id) {
      const had = rules.delete(id)
      refresh()
      publish<FaultRuleMessage>(channels.faultRule, { op: 'delete', id })
      return had
    },
    clear() {
      rules.clear()
      refresh()
      publish<FaultRuleMessage>(channels.faultRule, { op: 'clear' })
    },
    rules: () => [...rules.values()],
    apply(control) {
      if (control.op === 'set') injector.set(control.rule)
      else if (control.op === 'delete') injector.delete(control.id)
      else injector.clear()
    },
    applyRecord(value, source) {
      let control: FaultControl
      try {
        control = parseFaultControl(value)
      } catch (error) {
        const refused = error instanceof WeirError ? error : new WeirError('WEIR_ERR_FAULT_RULE_INVALID', String(error), { cause: error })
        rejected++
        publish<FaultRuleMessage>(channels.faultRule, { op: 'rejected', error: refused, ...(source === undefined ? {} : { source }) })
        return refused
      }
      injector.apply(control)
      return undefined
    },
    matching(point) {
      if (!active) return []
      const found: FaultRule[] = []
      for (const rule of rules.values()) if (ruleMatches(rule, point)) found.push(rule)
      return found
    },
    injected(rule, point, requestId) {
      const key = `${rule.kind}\u0000${rule.id}`
      const entry = counts.get(key) ?? { kind: rule.kind, rule: rule.id, count: 0 }
      entry.count++
      counts.set(key, entry)
      publish<FaultInjectedMessage>(channels.faultInjected, {
        kind: rule.kind,
        rule: rule.id,
        processor: point.processor,
        ...(point.path === undefined ? {} : { path: point.path }),
        ...(point.topic === undefined ? {} : { topic: point.topic }),
        ...(requestId === undefined ? {} : { requestId }),
      })
    },
    injections: () => [...counts.values()].map((entry) => ({ ...entry })),
  }
  return injector
}

/** The header value marking what was injected: `<kind>:<rule id>` joined by `,`. */
export function faultMark(rules: readonly FaultRule[]): string {
  return rules.map((rule) => `${rule.kind}:${rule.id}`).join(',')
}
