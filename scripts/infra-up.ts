// `npm run infra [-- --brokers 3] [-- --secure]`: starts Kafka and Redis as every weir command does
// (scripts/infra), prints the environment that points other commands at them, and keeps them up until Ctrl-C.
// Useful when running single test files, workers or benchmarks by hand against one long-lived broker:
//   npm run infra            # in one terminal
//   KAFKA_BOOTSTRAP_SERVERS=... REDIS_URL=... node --test test/processors/*.test.ts
// --brokers N starts N combined broker+controller nodes (replication factor min(N, 3), min.insync.replicas one
// less); --secure adds a SASL_SSL listener with users, ACLs and client properties files (scripts/infra/secure.ts).
import { parseArgs } from 'node:util'

import { createProgress, InfraUnavailable, provideInfrastructure } from './infra/index.ts'

const progress = createProgress('infra')
try {
  const { values } = parseArgs({ options: { brokers: { type: 'string', default: '1' }, secure: { type: 'boolean', default: false } }, strict: true })
  const brokers = Number(values.brokers)
  if (!Number.isInteger(brokers) || brokers < 1 || brokers > 9) throw new InfraUnavailable(`--brokers must be an integer from 1 to 9, got ${values.brokers}`)
  const infra = await provideInfrastructure({ progress, brokers, secure: values.secure })
  const exports = Object.entries(infra.env).map(([k, v]) => `export ${k}=${v}`)
  process.stdout.write(`${exports.join('\n')}\n`)
  if (infra.kafka.secure !== undefined) {
    progress.step(`SASL_SSL listener: ${infra.kafka.secure.brokers.join(',')}; client properties (pass one with --kafka-config): ${infra.kafka.secure.dir}/{admin,worker,gateway}.properties`)
  }
  progress.step('infrastructure is up; Ctrl-C stops it')
  setInterval(() => {}, 1 << 30)
} catch (error) {
  if (error instanceof InfraUnavailable) process.stderr.write(`\n[weir] cannot start the infrastructure: ${error.message}\n`)
  else if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write(`\n[weir] npm run infra: ${error.message}\n`)
  else throw error
  process.exit(1)
}
