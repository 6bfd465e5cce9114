// `weir import-redis`: moves the Redis schedule of the old design into weir's scheduler topic (importer.ts).
// Exit codes: 0 done (nothing left in Redis, or a dry run), 1 failure or members left, 2 invalid arguments.
import { parseArgs } from 'node:util'

import { isWeirError } from '../../core/errors.ts'
import { importFromRedis } from './importer.ts'
import { readKafkaConfig } from '../../kafka/index.ts'

export function importUsage(): string {
  return `Usage: weir import-redis --key <prefix> --topic <scheduler-topic> [options]

Moves every envelope of the Redis schedule <prefix>:due / <prefix>:body (and unacknowledged claims in
<prefix>:claims) into weir's scheduler as schedule requests, removing each from Redis only after Kafka
acknowledged it. Stop the Redis pollers first. Re-running is harmless for envelopes not yet due.

Options:
  --redis <url>         Redis URL without a password (default: $REDIS_URL, else redis://127.0.0.1:6379;
                        a URL with a password only in REDIS_URL)
  --key <prefix>        key prefix of the Redis schedule (required)
  --brokers <list>      Kafka bootstrap servers host:port[,...] (default: $KAFKA_BOOTSTRAP_SERVERS)
  --kafka-config <file> Java client properties file: TLS, SASL, bootstrap.servers (default: $WEIR_KAFKA_CONFIG)
  --topic <topic>       the scheduler's request topic, e.g. orders.commands.scheduler (required)
  --batch-size <n>      envelopes per batch (default 500)
  --no-claimed          leave claimed, unacknowledged envelopes in Redis
  --dry-run             decode and count, change nothing
  --json                print the final summary as JSON
`
}

export async function importRedisMain(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        redis: { type: 'string' },
        key: { type: 'string' },
        brokers: { type: 'string' },
        'kafka-config': { type: 'string' },
        topic: { type: 'string' },
        'batch-size': { type: 'string' },
        'no-claimed': { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (error) {
    process.stderr.write(`weir import-redis: ${error instanceof Error ? error.message : String(error)}\n\n${importUsage()}`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(importUsage())
    return 0
  }
  const problems: string[] = []
  const properties = readKafkaConfig(values['kafka-config'] ?? (env.WEIR_KAFKA_CONFIG || undefined), problems)
  const brokers = (values.brokers ?? env.KAFKA_BOOTSTRAP_SERVERS ?? properties?.brokers?.join(',') ?? '').split(',').map((b) => b.trim()).filter((b) => b.length > 0)
  if (values.key === undefined) problems.push('--key is required')
  if (values.topic === undefined) problems.push('--topic is required')
  if (brokers.length === 0) problems.push('--brokers (or KAFKA_BOOTSTRAP_SERVERS) is required')
  const batchSize = values['batch-size'] === undefined ? 500 : Number(values['batch-size'])
  if (!(Number.isInteger(batchSize) && batchSize > 0)) problems.push('--batch-size must be a positive integer')
  // Every local user can read a process's command line: a Redis password belongs in REDIS_URL.
  if (values.redis !== undefined && URL.parse(values.redis)?.password) {
    problems.push('--redis carries a password (WEIR_ERR_SECRET_ON_COMMAND_LINE): a command line is readable by every local user; set REDIS_URL instead')
  }
  if (problems.length > 0) {
    process.stderr.write(`weir import-redis: ${problems.join('; ')}\n\n${importUsage()}`)
    return 2
  }
  try {
    const result = await importFromRedis({
      redis: values.redis ?? env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      keyPrefix: values.key as string,
      brokers,
      ...(properties === undefined ? {} : { connection: properties.connection }),
      topic: values.topic as string,
      batchSize,
      includeClaimed: values['no-claimed'] !== true,
      dryRun: values['dry-run'] === true,
      onProgress: (p) => process.stderr.write(`import-redis: batch ${p.batches}: ${p.imported} imported, ${p.movedAside} moved aside, ${p.remaining} remaining\n`),
    })
    const dryRun = values['dry-run'] === true
    if (values.json === true) process.stdout.write(`${JSON.stringify({ ...result, dryRun })}\n`)
    else {
      process.stdout.write(
        `${dryRun ? 'would import' : 'imported'} ${result.imported} envelope(s) into ${String(values.topic)}; ` +
          `${result.movedAside} undecodable moved aside to ${String(values.key)}:dead; ${result.remaining} left in Redis\n`,
      )
    }
    return dryRun || result.remaining === 0 ? 0 : 1
  } catch (error) {
    const code = isWeirError(error) ? error.code : 'unexpected'
    process.stderr.write(`weir import-redis: failed (${code}): ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
}

if (import.meta.main) {
  importRedisMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`weir import-redis: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
}
