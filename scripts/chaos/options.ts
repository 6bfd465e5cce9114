// The chaos command's options: every numeric option and its default, validated all at once.
import { parseArgs } from 'node:util'

import { invalidOptions } from '../../core/errors.ts'
import { CONCURRENCY_OPTIONS, parseConcurrency } from './concurrency.ts'
import type { ChaosConcurrency } from './concurrency.ts'
import { parseChaosFaults } from './faults.ts'
import type { ChaosFaults } from './faults.ts'

/** Every numeric option and its default; each must be an integer >= 1. */
const NUMERIC = { records: '20000', workers: '3', kills: '6', partitions: '6', rate: '1000', requests: '1500', envelopes: '2000', 'cs-workers': '2', brokers: '1', sagas: '300' } as const
type NumericOption = keyof typeof NUMERIC

export type ChaosOptions = Record<NumericOption, number> & { json: boolean; keepTopics: boolean; brokerKills: number; kafkaConfig: string | undefined; faults: ChaosFaults | undefined; concurrency: ChaosConcurrency }

/** Parses the command line; every violation is reported at once (WEIR_ERR_INVALID_OPTIONS). */
export function parseOptions(args: string[]): ChaosOptions {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args,
      options: {
        json: { type: 'boolean', default: false },
        'keep-topics': { type: 'boolean', default: false },
        'broker-kills': { type: 'string', default: '0' },
        faults: { type: 'string' },
        'kafka-config': { type: 'string' },
        ...CONCURRENCY_OPTIONS,
        ...Object.fromEntries(Object.entries(NUMERIC).map(([name, value]) => [name, { type: 'string', default: value }])),
      },
    }).values
  } catch (error) {
    throw invalidOptions('chaos', [error instanceof Error ? error.message : String(error)])
  }
  const violations: string[] = []
  const numbers = {} as Record<NumericOption, number>
  for (const name of Object.keys(NUMERIC) as NumericOption[]) {
    const text = String(values[name])
    // Number('') is 0 and Number('1e3') is 1000: only plain digits are a count.
    if (!/^[0-9]+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) violations.push(`--${name} must be an integer >= 1, got "${text}"`)
    numbers[name] = Number(text)
  }
  const brokerKillsText = String(values['broker-kills'])
  if (!/^[0-9]+$/.test(brokerKillsText) || !Number.isSafeInteger(Number(brokerKillsText))) violations.push(`--broker-kills must be an integer >= 0, got "${brokerKillsText}"`)
  // One broker of min.insync.replicas 2 of 3 may be down; a smaller cluster stops taking writes.
  else if (Number(brokerKillsText) > 0 && numbers.brokers < 3) violations.push(`--broker-kills needs --brokers 3 or more (replication factor 3, min.insync.replicas 2), got --brokers ${String(values.brokers)}`)
  const kafkaConfig = typeof values['kafka-config'] === 'string' ? values['kafka-config'] : undefined
  // A cluster of its own is local and plaintext: a provider's properties file belongs to an external cluster.
  if (kafkaConfig !== undefined && numbers.brokers > 1) violations.push('--kafka-config is for an external cluster; --brokers 2 or more starts a local one of its own')
  const concurrency = parseConcurrency(values, violations)
  if (violations.length > 0) throw invalidOptions('chaos', violations)
  return { ...numbers, json: values.json === true, keepTopics: values['keep-topics'] === true, brokerKills: Number(brokerKillsText), kafkaConfig, faults: parseChaosFaults(values.faults as string | undefined), concurrency }
}

export const random = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min))
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
