// The faults of one command delivery, as the command router injects them (docs/faults.md, "What each kind
// does"). Every fault is one a real handler or delivery could have, so what follows is the router's own
// behaviour: an injected error is retried or not like a handler's, a dropped output is committed as lost, a
// duplicate is a second delivery the dedupe store must catch, a corrupt payload meets the schema check.
import { WeirError } from '../../core/errors.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { FAULT_HEADER, faultMark } from './injector.ts'
import type { FaultInjector } from './injector.ts'
import { rollFault } from './rules.ts'
import type { FaultPoint, FaultRule } from './rules.ts'

export interface CommandFaults {
  /** corrupt: the command with its payload replaced by garbage bytes (before the schema check), if one rolled. */
  corrupt(command: Envelope): Envelope | undefined
  /** duplicate: the rule that sends the command once more (a redelivery), if one rolled. */
  duplicate(): FaultRule | undefined
  /** delay and error, before the handler of `attempt` runs: waits, then throws if an error rule rolled. */
  beforeAttempt(attempt: number, sleep: (ms: number) => Promise<void>): Promise<void>
  /** drop, after the handler of `attempt` succeeded: whether its output is lost. */
  drop(attempt: number): boolean
  /** The `weir.fault` header for what this delivery was injected so far (undefined: nothing). */
  header(): string | undefined
}

/**
 * The faults for one delivery of a command at a point, or undefined when no armed rule matches (the router
 * then runs exactly as without an injector). Rolls are keyed by command id, out-of-order retry count and
 * attempt, so a seeded rule decides a delivery the same way every time it is processed (after a crash too).
 */
export function commandFaults(injector: FaultInjector, point: FaultPoint, command: Envelope): CommandFaults | undefined {
  const rules = injector.matching(point)
  if (rules.length === 0) return undefined
  const delivery = `${command.id}#${command.retry?.count ?? 0}`
  const injected: FaultRule[] = []
  const hit = (rule: FaultRule, attempt: number) => {
    if (!rollFault(rule, `${delivery}:${attempt}`)) return false
    injector.injected(rule, point, command.requestId)
    if (!injected.includes(rule)) injected.push(rule)
    return true
  }
  const of = (kind: FaultRule['kind']) => rules.filter((rule) => rule.kind === kind)
  return {
    corrupt(original) {
      const rule = of('corrupt').find((r) => hit(r, 0))
      if (rule === undefined) return undefined
      return { ...original, payload: corruptBytes(original.payload) }
    },
    duplicate: () => of('duplicate').find((r) => hit(r, 0)),
    async beforeAttempt(attempt, sleep) {
      for (const rule of of('delay')) if (hit(rule, attempt)) await sleep(rule.delayMs ?? 0)
      const error = of('error').find((r) => hit(r, attempt))
      if (error === undefined) return
      const message = `fault injected by rule ${error.id} (attempt ${attempt})`
      const details = { fault: `error:${error.id}` }
      // The router's own semantics: WEIR_ERR_NON_RETRIABLE goes straight to an error result, anything else is retried.
      throw error.retriable === true ? new WeirError('WEIR_ERR_FAULT_INJECTED', message, { details }) : new WeirError('WEIR_ERR_NON_RETRIABLE', message, { details })
    },
    drop: (attempt) => of('drop').some((r) => hit(r, attempt)),
    header: () => (injected.length === 0 ? undefined : faultMark(injected)),
  }
}

/** Headers with the fault mark added (a new map; the original is left as it is). */
export function withFaultHeader(headers: ReadonlyMap<string, Buffer> | undefined, mark: string | undefined): Map<string, Buffer> | undefined {
  if (mark === undefined) return headers === undefined ? undefined : new Map(headers)
  return new Map([...(headers ?? []), [FAULT_HEADER, Buffer.from(mark)]])
}

/** The payload as JSON bytes with every byte flipped: no longer what any schema of a JSON value accepts. */
function corruptBytes(payload: unknown): Buffer {
  const bytes = Buffer.from(JSON.stringify(payload) ?? 'null')
  for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i] as number) ^ 0xa5
  return bytes
}
