// `npm run infra`: starts Kafka and Redis as every weir command does (scripts/infra), prints the environment
// that points other commands at them, and keeps them up until Ctrl-C. Useful when running single test files,
// workers or benchmarks by hand against one long-lived broker:
//   npm run infra            # in one terminal
//   KAFKA_BOOTSTRAP_SERVERS=... REDIS_URL=... node --test test/processors/*.test.ts
import { createProgress, InfraUnavailable, provideInfrastructure } from './infra/index.ts'

const progress = createProgress('infra')
try {
  const infra = await provideInfrastructure({ progress })
  const exports = Object.entries(infra.env).map(([k, v]) => `export ${k}=${v}`)
  process.stdout.write(`${exports.join('\n')}\n`)
  progress.step('infrastructure is up; Ctrl-C stops it')
  setInterval(() => {}, 1 << 30)
} catch (error) {
  if (error instanceof InfraUnavailable) process.stderr.write(`\n[weir] cannot start the infrastructure: ${error.message}\n`)
  else throw error
  process.exit(1)
}
