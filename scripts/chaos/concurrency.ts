// The chaos command's concurrent-handler options: `--max-in-flight N` runs every worker (the chaos topology's and
// the command service's) with that many input records in flight per task, and `--io-max-ms M` makes the chaos
// topology's handler await a random 0..M ms before it reads its key's count (the command service's handler awaits
// each command's own workMs already). Both default to off (1 and 0), so a plain run is the serial loop.
export const CONCURRENCY_OPTIONS = {
  'max-in-flight': { type: 'string', default: '1' },
  'io-max-ms': { type: 'string', default: '0' },
} as const

export interface ChaosConcurrency {
  maxInFlight: number
  ioMaxMs: number
}

/** Reads the two options; a bad value is a violation (the caller reports them all, WEIR_ERR_INVALID_OPTIONS). */
export function parseConcurrency(values: Record<string, string | boolean | undefined>, violations: string[]): ChaosConcurrency {
  const maxInFlight = String(values['max-in-flight'])
  const ioMaxMs = String(values['io-max-ms'])
  if (!/^[0-9]+$/.test(maxInFlight) || Number(maxInFlight) < 1 || Number(maxInFlight) > 10_000) violations.push(`--max-in-flight must be an integer from 1 to 10000, got "${maxInFlight}"`)
  if (!/^[0-9]+$/.test(ioMaxMs) || !Number.isSafeInteger(Number(ioMaxMs))) violations.push(`--io-max-ms must be an integer >= 0, got "${ioMaxMs}"`)
  return { maxInFlight: Number(maxInFlight), ioMaxMs: Number(ioMaxMs) }
}

/** What every worker is started with: its flag, and the chaos topology's handler delay. */
export function concurrencyWorkerSettings(concurrency: ChaosConcurrency): { env: Record<string, string>; extraArgs: string[] } {
  return { env: { WEIR_CHAOS_IO_MAX_MS: String(concurrency.ioMaxMs) }, extraArgs: ['--max-in-flight', String(concurrency.maxInFlight)] }
}
