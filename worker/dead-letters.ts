// `weir dlq inspect|reinject`: reads dead letters with the weir.* headers that explain them
// (topology/dead-letter.ts), and re-produces chosen ones to their origin topic after a fix, exactly once per
// dead letter (dlq/reinject.ts). This file is the command line; its parts are in dlq/: reading a topic
// (read.ts), a letter's fields (letter.ts), inspect and reinject as functions, and printing (format.ts).
// Exit codes: 0 done, 1 failure, 2 invalid arguments.
import { parseArgs } from 'node:util'

import { isWeirError } from '../core/errors.ts'
import { readKafkaConfig } from '../kafka/index.ts'
import { deadLetterJson, formatDeadLetter } from './dlq/format.ts'
import { inspectDeadLetters } from './dlq/inspect.ts'
import { REINJECTED_FROM_HEADER, reinjectDeadLetters } from './dlq/reinject.ts'
import { subcommand } from './subcommand.ts'

// The library form (docs/processors.md): the same operations as functions.
export type { DeadLetter } from './dlq/letter.ts'
export { inspectDeadLetters } from './dlq/inspect.ts'
export type { InspectOptions } from './dlq/inspect.ts'
export { REINJECTED_FROM_HEADER, reinjectDeadLetters } from './dlq/reinject.ts'
export type { ReinjectOptions, ReinjectResult } from './dlq/reinject.ts'

export function dlqUsage(): string {
  return `Usage:
  weir dlq inspect --topic <dlq> [--brokers <list>] [--kafka-config <file>] [--limit <n>] [--code <code>] [--from-offset <n>] [--json]
  weir dlq reinject --topic <dlq> [--to origin|<topic>] [--code <code>] [--from-offset <n>] [--group <id>] [--dry-run] [--json]

inspect   prints dead letters with their weir.* headers (error code and message, origin topic/partition/
          offset/timestamp, attempts, processor, original sizes and SHA-256, truncation); --json prints one
          JSON document per line.
reinject  re-produces dead letters to their origin topic and partition (or --to <topic>) with their original
          key, value and headers (weir.* removed, ${REINJECTED_FROM_HEADER} added). Each batch commits with the
          DLQ position of the group weir-dlq-reinject.<dlq> in one transaction: a second run re-injects nothing
          twice. --from-offset starts every partition there instead (to revisit letters skipped by --code).
          A truncated letter (weir.truncated) is refused (WEIR_ERR_DEAD_LETTER_TRUNCATED, exit code 1).

--brokers defaults to $KAFKA_BOOTSTRAP_SERVERS, then the bootstrap.servers of --kafka-config (default $WEIR_KAFKA_CONFIG),
a Java client properties file that also gives TLS and SASL (docs/production.md).
`
}

export async function dlqMain(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const picked = subcommand('weir dlq', argv, ['inspect', 'reinject'], dlqUsage)
  if (typeof picked === 'number') return picked
  const { command, rest } = picked
  let values
  try {
    values = parseArgs({
      args: rest,
      options: {
        topic: { type: 'string' },
        brokers: { type: 'string' },
        'kafka-config': { type: 'string' },
        limit: { type: 'string' },
        code: { type: 'string' },
        'from-offset': { type: 'string' },
        to: { type: 'string' },
        group: { type: 'string' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (error) {
    process.stderr.write(`weir dlq ${command}: ${error instanceof Error ? error.message : String(error)}\n\n${dlqUsage()}`)
    return 2
  }
  const problems: string[] = []
  const properties = readKafkaConfig(values['kafka-config'] ?? (env.WEIR_KAFKA_CONFIG || undefined), problems)
  const brokers = (values.brokers ?? env.KAFKA_BOOTSTRAP_SERVERS ?? properties?.brokers?.join(',') ?? '').split(',').map((b) => b.trim()).filter((b) => b.length > 0)
  if (values.topic === undefined) problems.push('--topic is required')
  if (brokers.length === 0) problems.push('--brokers (or KAFKA_BOOTSTRAP_SERVERS) is required')
  const limit = values.limit === undefined ? 100 : Number(values.limit)
  if (!(Number.isInteger(limit) && limit > 0)) problems.push('--limit must be a positive integer')
  const fromOffset = values['from-offset']
  if (fromOffset !== undefined && !/^\d+$/.test(fromOffset)) problems.push('--from-offset must be an offset (a non-negative integer)')
  if (command === 'inspect' && (values.to !== undefined || values.group !== undefined || values['dry-run'] === true)) problems.push('--to, --group and --dry-run belong to reinject')
  if (problems.length > 0) {
    process.stderr.write(`weir dlq ${command}: ${problems.join('; ')}\n\n${dlqUsage()}`)
    return 2
  }
  const common = {
    brokers,
    ...(properties === undefined ? {} : { connection: properties.connection }),
    topic: values.topic as string,
    ...(fromOffset === undefined ? {} : { fromOffset: BigInt(fromOffset) }),
    ...(values.code === undefined ? {} : { code: values.code }),
  }
  try {
    if (command === 'inspect') {
      const letters = await inspectDeadLetters({ ...common, limit })
      if (values.json === true) for (const letter of letters) process.stdout.write(`${JSON.stringify(deadLetterJson(letter))}\n`)
      else {
        for (const letter of letters) process.stdout.write(`${formatDeadLetter(letter)}\n\n`)
        process.stdout.write(`${letters.length} dead letter(s)${letters.length >= limit ? ` (limit ${limit} reached)` : ''}\n`)
      }
      return 0
    }
    const dryRun = values['dry-run'] === true
    const result = await reinjectDeadLetters({
      ...common,
      to: values.to ?? 'origin',
      dryRun,
      ...(values.group === undefined ? {} : { groupId: values.group }),
      onProgress: (p) => process.stderr.write(`dlq reinject: ${p.reinjected} re-injected, ${p.examined} examined\n`),
    })
    const summary = {
      dryRun,
      examined: result.examined,
      reinjected: result.reinjected,
      wouldReinject: dryRun ? result.records.length : undefined,
      skipped: result.skipped,
      unroutable: result.unroutable.map((u) => `${u.partition}@${u.offset}`),
      refused: result.refused.map((r) => ({ at: `${r.partition}@${r.offset}`, code: r.error.code, message: r.error.message })),
      records: result.records.map((r) => ({ from: `${r.from.partition}@${r.from.offset}`, to: r.to.topic, partition: r.to.partition ?? null })),
    }
    if (values.json === true) process.stdout.write(`${JSON.stringify(summary)}\n`)
    else {
      for (const r of summary.records) process.stdout.write(`${dryRun ? 'would re-inject' : 're-injected'} ${values.topic}/${r.from} -> ${r.to}${r.partition === null ? '' : `/${r.partition}`}\n`)
      process.stdout.write(
        `${dryRun ? `${result.records.length} would be re-injected` : `${result.reinjected} re-injected`}; ${result.examined} examined, ${result.skipped} skipped by --code` +
          `${result.unroutable.length > 0 ? `, ${result.unroutable.length} without an origin topic (left in place: ${summary.unroutable.join(', ')})` : ''}\n`,
      )
    }
    // Truncated letters are refused, never re-injected cut: say so with the code, and fail the run.
    for (const r of result.refused) process.stderr.write(`weir dlq reinject: refused (${r.error.code}): ${r.error.message}\n`)
    return result.refused.length > 0 ? 1 : 0
  } catch (error) {
    const code = isWeirError(error) ? error.code : 'unexpected'
    process.stderr.write(`weir dlq ${command}: failed (${code}): ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
}

if (import.meta.main) {
  dlqMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`weir dlq: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
}
