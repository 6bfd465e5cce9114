// Service settings shared by the worker and the gateway CLIs: command-line flags over environment variables
// over defaults, with problems collected (not thrown) so a service reports every one at once.
import { parseArgs } from 'node:util'

import { invalidOptions } from './errors.ts'

/** One setting: its flag, its environment variable, its default and what it is for (docs tables show these). */
export interface Setting {
  readonly flag: string
  readonly env: string
  readonly default: string
  readonly help: string
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export interface SettingsReader<F extends string> {
  readonly positionals: string[]
  /** Problems found so far; the caller adds its own and throws them all together. */
  readonly violations: string[]
  /** The flag's value, else its environment variable's (an empty variable counts as unset). */
  value(flag: F): string | undefined
  /** An integer >= min, or `fallback` when unset (a bad value is recorded as a violation). */
  integer(flag: F, fallback: number, min: number): number
  /** `true` or `false`, or `fallback` when unset (anything else is recorded as a violation). */
  boolean(flag: F, fallback: boolean): boolean
}

/** Parses flags strictly (an unknown flag throws WEIR_ERR_INVALID_OPTIONS at once, naming `service`). */
export function readSettings<S extends Setting>(
  service: string,
  settings: readonly S[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { allowPositionals?: boolean } = {},
): SettingsReader<S['flag']> {
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: options.allowPositionals ?? false,
      strict: true,
      options: Object.fromEntries(settings.map((s) => [s.flag, { type: 'string' as const }])),
    })
  } catch (error) {
    throw invalidOptions(service, [(error as Error).message])
  }
  const violations: string[] = []
  const value = (flag: S['flag']): string | undefined => {
    const fromFlag = parsed.values[flag]
    if (typeof fromFlag === 'string') return fromFlag
    const variable = settings.find((s) => s.flag === flag)?.env
    const fromEnv = variable === undefined ? undefined : env[variable]
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv
  }
  return {
    positionals: parsed.positionals,
    violations,
    value,
    integer(flag, fallback, min) {
      const raw = value(flag)
      if (raw === undefined) return fallback
      const n = Number(raw)
      if (!Number.isInteger(n) || n < min) {
        violations.push(`--${flag} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
        return fallback
      }
      return n
    },
    boolean(flag, fallback) {
      const raw = value(flag)
      if (raw === undefined) return fallback
      if (raw === 'true' || raw === 'false') return raw === 'true'
      violations.push(`--${flag} must be true or false, got ${JSON.stringify(raw)}`)
      return fallback
    },
  }
}
