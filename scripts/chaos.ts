// `npm run chaos [-- --json] [--records N] [--workers W] [--kills K] [--partitions P] [--rate R] [--sagas S]
//                [--requests R] [--envelopes E] [--cs-workers C] [--brokers B] [--broker-kills K] [--keep-topics]
//                [--kafka-config client.properties] [--faults error:<p>[:<seed>]] [--max-in-flight N] [--io-max-ms M]`
// (--faults: injected handler errors on top of the kills, scripts/chaos/faults.ts; --max-in-flight and --io-max-ms:
// concurrent handlers that await random delays, scripts/chaos/concurrency.ts)
// Runs W worker processes of the chaos topology and C worker processes of the command service
// (test/fixtures/chaos-command-service.ts) on a real broker, feeds both, SIGKILLs workers of both kinds in
// turn and restarts them, while one read_committed reader tails every output and stamps each record with the
// moment it became visible. Once everything expected is there it reads every partition to its end offsets
// again after a pause, and test/helpers/chaos-check.ts judges: no duplicate, no loss, exact per-key state,
// every timer set once and fired once unless cancelled, never after its cancel, never early; every delayed
// envelope (the feed's and the router's out-of-order retries) scheduled once and delivered once, never early;
// every request exactly one outcome, of the kind its class allows; every saga ended once, completed or
// compensated as planned (test/helpers/saga-chaos-check.ts); K kills done. Prints, last, one JSON line.
// With --brokers B > 1 it starts its own local B-node cluster (KAFKA_BOOTSTRAP_SERVERS is not used: it must
// kill brokers) and, after the worker kills, SIGKILLs and restarts brokers K times in turn: the leader of a
// source partition, the transaction coordinator of a task, the group coordinator, then a rolling restart of
// every node; after each kill it measures the seconds until every task committed again, and before the next one
// waits until the cluster recovered (every broker listed, every replica in sync). The feeds go on until the last
// kill's recovery. --kafka-config (or WEIR_KAFKA_CONFIG) gives the TLS and SASL of an external cluster to its own
// clients and its workers. A run that fails keeps the workers' and brokers' logs and prints where.
// Every numeric option must be an integer >= 1, --broker-kills >= 0 (else WEIR_ERR_INVALID_OPTIONS, exit 2).
import { WeirError } from '../core/errors.ts'
import { chaosVerdict } from '../test/helpers/chaos-check.ts'
import type { ChaosRunReport } from '../test/helpers/chaos-check.ts'
import { sagaChaosVerdict } from '../test/helpers/saga-chaos-check.ts'
import type { SagaChaosReport } from '../test/helpers/saga-chaos-check.ts'
import { parseOptions } from './chaos/options.ts'
import type { ChaosOptions } from './chaos/options.ts'
import { run } from './chaos/run.ts'
import { InfraUnavailable, createProgress, provideInfrastructure } from './infra/index.ts'

let options: ChaosOptions
try {
  options = parseOptions(process.argv.slice(2))
} catch (error) {
  process.stderr.write(`chaos: ${error instanceof WeirError ? `${error.code}: ${error.message}` : String(error)}\n`)
  process.exit(2)
}
const progress = createProgress('chaos')

async function main(): Promise<ChaosRunReport & SagaChaosReport> {
  // The security of an external cluster: this run's own clients and the workers it starts read it from here.
  if (options.kafkaConfig !== undefined) process.env.WEIR_KAFKA_CONFIG = options.kafkaConfig
  if (options.brokers > 1 && (process.env.KAFKA_BOOTSTRAP_SERVERS || process.env.WEIR_KAFKA_CONFIG)) {
    progress.step(`--brokers ${options.brokers}: starting a cluster of its own (it kills brokers); KAFKA_BOOTSTRAP_SERVERS and WEIR_KAFKA_CONFIG are not used`)
    delete process.env.KAFKA_BOOTSTRAP_SERVERS
    delete process.env.WEIR_KAFKA_CONFIG
  }
  const infra = await provideInfrastructure({ redis: false, progress, brokers: options.brokers })
  // Whatever fails below, the brokers this run started are stopped (the workers in run()'s own cleanup).
  try {
    return await run(infra, options, progress)
  } finally {
    await infra.stop().catch(() => {})
  }
}

main().then(
  (report) => {
    const failed = [...chaosVerdict(report), ...sagaChaosVerdict(report)]
    const table = Object.entries(report).map(([k, v]) => `  ${k.padEnd(26)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    process.stderr.write(`\nchaos ${failed.length === 0 ? 'PASSED' : `FAILED (${failed.join(', ')})`}\n${table.join('\n')}\n`)
    if (options.json) process.stdout.write(`${JSON.stringify({ ...report, ...options.concurrency, passed: failed.length === 0, failedChecks: failed })}\n`)
    process.exit(failed.length === 0 ? 0 : 1)
  },
  (error: unknown) => {
    process.stderr.write(`chaos run failed: ${error instanceof InfraUnavailable ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
