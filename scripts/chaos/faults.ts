// `npm run chaos -- --faults error:<probability>[:<seed>]`: injected non-retriable handler errors on top of the
// SIGKILLs (docs/faults.md, "Chaos runs"). The rule reaches the command-service workers through their fault
// control topic, written before they start (a worker reads it to its end before it processes anything), so a
// worker restarted after a kill injects exactly what the killed one did. The rule is seeded: whether a delivery
// of a command fails is a function of the command id and its out-of-order retry count, which this file
// computes for every request too, so each request is judged by the class it must end in.
import { invalidOptions } from '../../core/errors.ts'
import type { ConsumedRecord } from '../../kafka/index.ts'
import { createAdmin, createProducer } from '../../kafka/index.ts'
import { FAULT_HEADER } from '../../processors/faults/injector.ts'
import { parseFaultRule, rollFault } from '../../processors/faults/rules.ts'
import type { FaultRule } from '../../processors/faults/rules.ts'
import { CHAOS_RETRY_ATTEMPTS, chaosCommand } from '../../test/fixtures/chaos-command-service.ts'
import type { ChaosWork } from '../../test/fixtures/chaos-command-service.ts'
import type { ChaosRequest } from '../../test/helpers/chaos-check.ts'

export interface ChaosFaults {
  readonly rule: FaultRule
  /** Worker arguments of the command-service workers. */
  readonly workerArgs: readonly string[]
}

/** Parses `--faults`; only injected errors are supported: a class of outcome the run can predict per request. */
export function parseChaosFaults(spec: string | undefined): ChaosFaults | undefined {
  if (spec === undefined) return undefined
  const [kind, probability, seed, ...rest] = spec.split(':')
  const violations: string[] = []
  if (kind !== 'error') violations.push(`--faults: only error:<probability>[:<seed>] is supported (an injected non-retriable handler error), got "${spec}"`)
  const p = Number(probability)
  if (probability === undefined || !/^(0(\.\d+)?|1(\.0+)?)$/.test(probability)) violations.push(`--faults: the probability must be a number from 0 to 1, got "${probability ?? ''}"`)
  if (rest.length > 0 || seed === '') violations.push(`--faults: expected error:<probability>[:<seed>], got "${spec}"`)
  if (violations.length > 0) throw invalidOptions('chaos', violations)
  const path = `${chaosCommand.topicAlias}/${chaosCommand.contextPath}/${chaosCommand.alias}`
  const rule = parseFaultRule({ id: 'chaos-error', kind: 'error', probability: p, seed: seed ?? 'chaos', match: { path } })
  return { rule, workerArgs: ['--faults', 'true'] }
}

/** Writes the rule to the workers' fault control topic (created here, as the worker would: compacted, one partition). */
export async function armChaosFaults(faults: ChaosFaults, brokers: readonly string[], csApplicationId: string): Promise<void> {
  const topic = `${csApplicationId}.faults`
  const admin = createAdmin({ brokers: [...brokers], clientId: 'weir-chaos-faults' })
  try {
    await admin.createTopics([{ name: topic, partitions: 1, configs: { 'cleanup.policy': 'compact' } }])
  } finally {
    await admin.close()
  }
  const producer = createProducer({ brokers: [...brokers], clientId: 'weir-chaos-faults' })
  try {
    await producer.send([{ topic, key: faults.rule.id, value: JSON.stringify({ op: 'set', rule: faults.rule }) }])
  } finally {
    await producer.close()
  }
}

/**
 * The request's class under the rule: its deliveries are counts 0 .. min(failures, attempts - 1) (one in-order
 * attempt each, as the chaos service runs); the first whose roll hits ends it with the injected error, after the
 * out-of-order retries before it. A command that races its deadline may time out instead.
 */
export function planWithFaults(faults: ChaosFaults | undefined, request: ChaosRequest, work: ChaosWork, outOfOrder: boolean): ChaosRequest {
  if (faults === undefined) return request
  const deliveries = outOfOrder ? Math.min(work.failures, CHAOS_RETRY_ATTEMPTS - 1) + 1 : 1
  for (let count = 0; count < deliveries; count++) {
    if (!rollFault(faults.rule, `${request.commandId}#${count}:1`)) continue
    return { ...request, expect: request.expect === 'may-time-out' ? 'fails-injected-or-times-out' : 'fails-injected', retries: count }
  }
  return request
}

/** What the run says about its faults (added to the report line): the rule, requests planned to meet it, outcomes marked. */
export function chaosFaultFacts(faults: ChaosFaults | undefined, requests: readonly ChaosRequest[], outcomes: readonly ConsumedRecord[]): Record<string, unknown> {
  if (faults === undefined) return {}
  return {
    faults: `${faults.rule.kind}:${faults.rule.probability}:${faults.rule.seed ?? ''}`,
    requestsFaulted: requests.filter((r) => r.expect === 'fails-injected' || r.expect === 'fails-injected-or-times-out').length,
    outcomesMarkedFaulted: outcomes.filter((record) => record.headers.get(FAULT_HEADER) !== undefined).length,
  }
}
