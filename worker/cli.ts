// `weir worker <topology-module> [options]`: runs a topology until SIGTERM/SIGINT.
// Exit codes: 0 stopped cleanly, 1 runtime failure, 2 invalid configuration, 3 stopped with work not committed
// (the shutdown deadline passed or a final commit failed; stderr and the log name the tasks).
import { isWeirError } from '../core/errors.ts'
import { openStore } from '../state/open-store.ts'
import { parseWorkerConfig, usage } from './config.ts'
import { startWorker } from './worker.ts'
import type { StopOutcome } from './worker.ts'
import { subcommand } from './subcommand.ts'

function exitCodeOf(outcome: StopOutcome): number {
  if (outcome.clean) return 0
  process.stderr.write(`weir worker: stopped with work not committed (${outcome.error?.code}): ${outcome.error?.message}\n`)
  return 3
}

async function main(argv: string[]): Promise<number> {
  const picked = subcommand('weir', argv, ['worker'], usage)
  if (typeof picked === 'number') return picked
  const { rest } = picked
  let config
  try {
    config = parseWorkerConfig(rest, process.env)
  } catch (error) {
    if (isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS')) {
      const violations = (error.details.violations as string[] | undefined) ?? [error.message]
      process.stderr.write(`weir worker: invalid configuration (${error.code}):\n${violations.map((v) => `  - ${v}`).join('\n')}\n\n${usage()}`)
      return 2
    }
    throw error
  }
  let worker
  try {
    worker = await startWorker(config, openStore)
  } catch (error) {
    const code = isWeirError(error) ? error.code : 'unexpected'
    process.stderr.write(`weir worker: cannot start (${code}): ${error instanceof Error ? error.message : String(error)}\n`)
    return isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS') ? 2 : 1
  }
  let signals = 0
  const onSignal = (signal: NodeJS.Signals) => {
    signals++
    if (signals > 1) {
      worker.logger.warn({ signal }, 'second signal: exiting without a clean stop')
      process.exit(1)
    }
    worker.logger.info({ signal }, 'signal received')
    void worker.stop().then((outcome) => process.exit(exitCodeOf(outcome)))
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  try {
    await worker.runtime.done
    return 0
  } catch (error) {
    worker.logger.fatal({ err: error }, 'worker failed')
    await worker.stop().catch(() => {})
    return 1
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`weir: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
