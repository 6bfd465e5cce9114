// `weir dlq inspect|reinject`: reads dead letters with the weir.* headers that explain them
// (topology/dead-letter.ts), and re-produces chosen ones to their origin topic after a fix.
//
// Re-injection is exactly-once per dead letter: each batch of re-produced records and the DLQ position of the
// consumer group `weir-dlq-reinject.<dlq topic>` (override with --group) commit in one Kafka transaction, so a
// second run starts where the first stopped and re-injects nothing twice; a crash aborts the open batch and
// the next run redoes it. The position moves past every dead letter examined, selected or not: letters left
// out by --code are reached again with --from-offset.
// Exit codes: 0 done, 1 failure, 2 invalid arguments.
import { parseArgs } from 'node:util'

import { WeirError, invalidOptions, isWeirError } from '../core/errors.ts'
import { committedOffsets, createAdmin, createGroupMember, createPartitionReader, createProducer, readKafkaConfig } from '../kafka/index.ts'
import type { ConsumedRecord, KafkaConnection, OutgoingRecord, TopicPartitionOffset } from '../kafka/index.ts'
import { DEAD_LETTER_HEADERS } from '../topology/dead-letter.ts'
import type { TruncatedPart } from '../topology/dead-letter.ts'

export const REINJECTED_FROM_HEADER = 'weir.reinjected-from'

export interface DeadLetter {
  readonly record: ConsumedRecord
  readonly code: string | undefined
  readonly message: string | undefined
  readonly origin: { topic?: string; partition?: number; offset?: bigint; timestamp?: bigint }
  readonly attempts: number | undefined
  readonly processor: string | undefined
  /** The record's headers without the weir.* ones: what the original record carried. */
  readonly originalHeaders: Record<string, Buffer>
  /** What was cut so the dead letter fits its topic (weir.truncated); empty when it is whole. */
  readonly truncated: TruncatedPart[]
  /** Size in bytes of the full key and value (-1: null) and the full value's SHA-256 (hex), when the letter says. */
  readonly keySize: number | undefined
  readonly valueSize: number | undefined
  readonly valueSha256: string | undefined
}

export function describeDeadLetter(record: ConsumedRecord): DeadLetter {
  const text = (name: string) => record.headers.get(name)?.toString('utf8')
  const int = (name: string) => {
    const value = text(name)
    return value === undefined || !/^-?\d+$/.test(value) ? undefined : BigInt(value)
  }
  const originalHeaders: Record<string, Buffer> = {}
  for (const [name, value] of record.headers) if (!name.startsWith('weir.')) originalHeaders[name] = value
  const partition = int(DEAD_LETTER_HEADERS.partition)
  const attempts = int(DEAD_LETTER_HEADERS.attempts)
  const originTopic = text(DEAD_LETTER_HEADERS.topic)
  const offset = int(DEAD_LETTER_HEADERS.offset)
  const timestamp = int(DEAD_LETTER_HEADERS.timestamp)
  const keySize = int(DEAD_LETTER_HEADERS.keySize)
  const valueSize = int(DEAD_LETTER_HEADERS.valueSize)
  const truncated = (text(DEAD_LETTER_HEADERS.truncated) ?? '')
    .split(',')
    .filter((part): part is TruncatedPart => part === 'value' || part === 'headers' || part === 'key')
  return {
    record,
    code: text(DEAD_LETTER_HEADERS.code),
    message: text(DEAD_LETTER_HEADERS.message),
    origin: {
      ...(originTopic === undefined ? {} : { topic: originTopic }),
      ...(partition === undefined ? {} : { partition: Number(partition) }),
      ...(offset === undefined ? {} : { offset }),
      ...(timestamp === undefined ? {} : { timestamp }),
    },
    attempts: attempts === undefined ? undefined : Number(attempts),
    processor: text(DEAD_LETTER_HEADERS.processor),
    originalHeaders,
    // A marker naming nothing known still means the letter is not whole.
    truncated: truncated.length === 0 && (text(DEAD_LETTER_HEADERS.truncated) ?? '') !== '' ? ['value'] : truncated,
    keySize: keySize === undefined ? undefined : Number(keySize),
    valueSize: valueSize === undefined ? undefined : Number(valueSize),
    valueSha256: text(DEAD_LETTER_HEADERS.valueSha256),
  }
}

/** The coded refusal of a truncated dead letter: its key, value or headers are not the record's any more. */
export function truncatedError(letter: DeadLetter, dlqTopic: string): WeirError {
  const { record } = letter
  const kept = record.value?.byteLength ?? 0
  return new WeirError(
    'WEIR_ERR_DEAD_LETTER_TRUNCATED',
    `${dlqTopic}/${record.partition}@${record.offset} was truncated to fit its topic (${letter.truncated.join(', ')} cut; value ${kept} of ${letter.valueSize ?? '?'} bytes, sha256 ${letter.valueSha256 ?? '?'}): it cannot be re-injected; rebuild the record from its source`,
    { details: { partition: record.partition, offset: String(record.offset), truncated: letter.truncated, valueSize: letter.valueSize, keptBytes: kept } },
  )
}

interface ReadOptions {
  brokers: readonly string[]
  /** TLS, SASL and compression (kafka/connection.ts). */
  connection?: KafkaConnection
  topic: string
  /** Start of every partition (default: the log start, or for reinject the group's committed position). */
  fromOffset?: bigint
  clientId?: string
}

/**
 * Reads every partition of `topic` from `start` up to its end (the last stable offset at the time of the
 * call), calling `onBatch` per fetched batch; `onBatch` returning false stops the read.
 */
async function readToEnd(
  options: ReadOptions,
  start: (partitions: number) => Promise<Map<number, bigint>>,
  onBatch: (partition: number, records: ConsumedRecord[], nextOffset: bigint) => Promise<boolean>,
): Promise<Map<number, bigint>> {
  const admin = createAdmin({ brokers: options.brokers, connection: options.connection, clientId: options.clientId ?? 'weir-dlq' })
  const reader = createPartitionReader({ brokers: options.brokers, connection: options.connection, clientId: options.clientId ?? 'weir-dlq', maxWaitMs: 100 })
  try {
    const count = await admin.partitionCount(options.topic)
    const partitions = Array.from({ length: count }, (_, partition) => ({ topic: options.topic, partition }))
    const ends = new Map((await reader.offsets(partitions, 'latest')).map((o) => [o.partition, o.offset]))
    const earliest = new Map((await reader.offsets(partitions, 'earliest')).map((o) => [o.partition, o.offset]))
    const positions = await start(count)
    for (const [partition, first] of earliest) {
      const wanted = options.fromOffset ?? positions.get(partition) ?? first
      positions.set(partition, wanted < first ? first : wanted)
    }
    const open = () => [...positions].filter(([p, offset]) => offset < (ends.get(p) ?? 0n)).map(([partition, offset]) => ({ topic: options.topic, partition, offset }))
    for (let todo = open(); todo.length > 0; todo = open()) {
      for (const batch of await reader.fetch(todo)) {
        if (batch.outOfRange) throw new WeirError('WEIR_ERR_KAFKA', `${options.topic}/${batch.partition}: position out of range (the log was truncated meanwhile)`)
        // Records past the end snapshot arrived after the call started: leave them for the next run.
        const end = ends.get(batch.partition) ?? 0n
        const records = batch.records.filter((r) => r.offset < end)
        const next = batch.nextOffset > end ? end : batch.nextOffset
        positions.set(batch.partition, next)
        if (!(await onBatch(batch.partition, records, next))) return positions
      }
    }
    return positions
  } finally {
    await reader.close().catch(() => {})
    await admin.close().catch(() => {})
  }
}

export interface InspectOptions extends ReadOptions {
  /** At most this many dead letters (default 100). */
  limit?: number
  /** Only dead letters with this weir.error.code. */
  code?: string
}

export async function inspectDeadLetters(options: InspectOptions): Promise<DeadLetter[]> {
  const limit = options.limit ?? 100
  if (!(Number.isInteger(limit) && limit > 0)) throw invalidOptions('dlq inspect', ['limit must be a positive integer'])
  const found: DeadLetter[] = []
  await readToEnd(
    options,
    async () => new Map(),
    async (_partition, records) => {
      for (const record of records) {
        const letter = describeDeadLetter(record)
        if (options.code !== undefined && letter.code !== options.code) continue
        found.push(letter)
        if (found.length >= limit) return false
      }
      return true
    },
  )
  return found.sort((a, b) => a.record.partition - b.record.partition || Number(a.record.offset - b.record.offset))
}

export interface ReinjectOptions extends ReadOptions {
  /** 'origin' (default): the topic and partition each dead letter came from; or a topic name. */
  to?: string
  code?: string
  dryRun?: boolean
  /** Consumer group whose committed position marks what was examined (default `weir-dlq-reinject.<topic>`). */
  groupId?: string
  /** Records per transaction (default 500). */
  batchSize?: number
  onProgress?: (progress: ReinjectResult) => void
}

export interface ReinjectResult {
  examined: number
  reinjected: number
  /** Filtered out by `code`. */
  skipped: number
  /** Selected but without a weir.origin.topic header while `to` is 'origin': left in place, reported. */
  unroutable: Array<{ partition: number; offset: bigint }>
  /** Selected but truncated (weir.truncated): refused, left in place, each with its WEIR_ERR_DEAD_LETTER_TRUNCATED error. */
  refused: Array<{ partition: number; offset: bigint; error: WeirError }>
  /** The records produced (or, in a dry run, that would be). */
  records: Array<{ from: { partition: number; offset: bigint }; to: OutgoingRecord }>
}

export function reinjectRecord(letter: DeadLetter, dlqTopic: string, to: string): OutgoingRecord | undefined {
  const { record } = letter
  const headers: Record<string, Buffer | string> = { ...letter.originalHeaders, [REINJECTED_FROM_HEADER]: `${dlqTopic}/${record.partition}/${record.offset}` }
  if (to !== 'origin') return { topic: to, key: record.key ?? null, value: record.value ?? null, headers }
  if (letter.origin.topic === undefined) return undefined
  return {
    topic: letter.origin.topic,
    ...(letter.origin.partition === undefined || letter.origin.partition < 0 ? {} : { partition: letter.origin.partition }),
    key: record.key ?? null,
    value: record.value ?? null,
    headers,
  }
}

export async function reinjectDeadLetters(options: ReinjectOptions): Promise<ReinjectResult> {
  const violations: string[] = []
  if (typeof options.topic !== 'string' || options.topic.length === 0) violations.push('topic must be a non-empty string')
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) violations.push('brokers must be a non-empty array')
  const batchSize = options.batchSize ?? 500
  if (!(Number.isInteger(batchSize) && batchSize > 0)) violations.push('batchSize must be a positive integer')
  const to = options.to ?? 'origin'
  if (to === options.topic) violations.push('re-injecting a dead-letter topic into itself would loop')
  if (violations.length > 0) throw invalidOptions('dlq reinject', violations)
  const groupId = options.groupId ?? `weir-dlq-reinject.${options.topic}`
  const result: ReinjectResult = { examined: 0, reinjected: 0, skipped: 0, unroutable: [], refused: [], records: [] }

  const committedStart = async (count: number) => {
    const partitions = Array.from({ length: count }, (_, partition) => ({ topic: options.topic, partition }))
    const committed = await committedOffsets({ brokers: options.brokers, connection: options.connection }, groupId, partitions)
    return new Map(committed.map((c) => [c.partition, c.offset]))
  }

  const select = (records: readonly ConsumedRecord[]) => {
    const out: Array<{ from: { partition: number; offset: bigint }; to: OutgoingRecord }> = []
    for (const record of records) {
      result.examined++
      const letter = describeDeadLetter(record)
      if (options.code !== undefined && letter.code !== options.code) {
        result.skipped++
        continue
      }
      if (letter.truncated.length > 0) {
        result.refused.push({ partition: record.partition, offset: record.offset, error: truncatedError(letter, options.topic) })
        continue
      }
      const outgoing = reinjectRecord(letter, options.topic, to)
      if (outgoing === undefined) result.unroutable.push({ partition: record.partition, offset: record.offset })
      else out.push({ from: { partition: record.partition, offset: record.offset }, to: outgoing })
    }
    return out
  }

  if (options.dryRun === true) {
    await readToEnd(options, committedStart, async (_partition, records) => {
      result.records.push(...select(records))
      return true
    })
    result.reinjected = 0
    return result
  }

  // The group member gives the offset commit a generation, so a second reinject running at the same time
  // (same transactional id) fences this one instead of both committing.
  const member = createGroupMember({ brokers: options.brokers, connection: options.connection, groupId, topics: [options.topic], assignment: 'round-robin', sessionTimeoutMs: 10_000 })
  const producer = createProducer({ brokers: options.brokers, connection: options.connection, transactionalId: groupId, clientId: `${groupId}-producer` })
  try {
    await member.join()
    let pending: Array<{ from: { partition: number; offset: bigint }; to: OutgoingRecord }> = []
    const positions = new Map<number, bigint>()
    let dirty = false
    const flush = async () => {
      if (!dirty) return
      const tx = await producer.beginTransaction()
      try {
        await tx.send(pending.map((p) => p.to))
        const offsets: TopicPartitionOffset[] = [...positions].map(([partition, offset]) => ({ topic: options.topic, partition, offset }))
        await tx.sendOffsets(member, offsets)
        await tx.commit()
      } catch (error) {
        await tx.abort().catch(() => {})
        throw error
      }
      result.reinjected += pending.length
      result.records.push(...pending)
      pending = []
      dirty = false
      options.onProgress?.({ ...result })
    }
    await readToEnd(options, committedStart, async (partition, records, nextOffset) => {
      pending.push(...select(records))
      positions.set(partition, nextOffset)
      dirty = true
      if (pending.length >= batchSize) await flush()
      return true
    })
    await flush()
    return result
  } finally {
    await producer.close().catch(() => {})
    await member.leave().catch(() => {})
    await member.close().catch(() => {})
  }
}

// ---- command line ----

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

const show = (bytes: Buffer | undefined) => {
  if (bytes === undefined) return 'null'
  const text = bytes.toString('utf8')
  // Bytes that are not valid UTF-8, or hold control characters other than whitespace, print as base64.
  const printable = !text.includes('\uFFFD') && ![...text].some((c) => c.charCodeAt(0) < 0x20 && !'\t\n\r'.includes(c))
  return printable ? JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text) : `<${bytes.length} bytes, base64 ${bytes.toString('base64').slice(0, 80)}>`
}

export function deadLetterJson(letter: DeadLetter): Record<string, unknown> {
  const { record } = letter
  return {
    topic: record.topic,
    partition: record.partition,
    offset: String(record.offset),
    timestamp: String(record.timestamp),
    code: letter.code ?? null,
    message: letter.message ?? null,
    origin: {
      topic: letter.origin.topic ?? null,
      partition: letter.origin.partition ?? null,
      offset: letter.origin.offset === undefined ? null : String(letter.origin.offset),
      timestamp: letter.origin.timestamp === undefined ? null : String(letter.origin.timestamp),
    },
    attempts: letter.attempts ?? null,
    processor: letter.processor ?? null,
    truncated: letter.truncated,
    keySize: letter.keySize ?? null,
    valueSize: letter.valueSize ?? null,
    valueSha256: letter.valueSha256 ?? null,
    headers: Object.fromEntries(Object.entries(letter.originalHeaders).map(([k, v]) => [k, v.toString('utf8')])),
    key: record.key === undefined ? null : record.key.toString('base64'),
    value: record.value === undefined ? null : record.value.toString('base64'),
  }
}

function formatDeadLetter(letter: DeadLetter): string {
  const { record, origin } = letter
  const when = (ms: bigint | undefined) => (ms === undefined ? '?' : new Date(Number(ms)).toISOString())
  return [
    `${record.topic}/${record.partition}@${record.offset}  ${when(record.timestamp)}  ${letter.code ?? '(no weir.error.code)'}`,
    `  message:   ${letter.message ?? ''}`,
    `  origin:    ${origin.topic ?? '?'}/${origin.partition ?? '?'}@${origin.offset ?? '?'} at ${when(origin.timestamp)}`,
    `  processor: ${letter.processor ?? '?'}  attempts: ${letter.attempts ?? '?'}`,
    ...(letter.truncated.length === 0
      ? []
      : [`  TRUNCATED: ${letter.truncated.join(', ')} cut to fit the topic; value ${record.value?.byteLength ?? 0} of ${letter.valueSize ?? '?'} bytes kept (cannot be re-injected)`]),
    ...(letter.valueSha256 === undefined ? [] : [`  original:  value ${letter.valueSize ?? '?'} bytes, sha256 ${letter.valueSha256}, key ${letter.keySize ?? '?'} bytes`]),
    `  key:       ${show(record.key)}`,
    `  value:     ${show(record.value)}`,
    ...Object.entries(letter.originalHeaders).map(([name, value]) => `  header:    ${name}=${show(value)}`),
  ].join('\n')
}

export async function dlqMain(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(dlqUsage())
    return command === undefined ? 2 : 0
  }
  if (command !== 'inspect' && command !== 'reinject') {
    process.stderr.write(`weir dlq: unknown command ${command}\n\n${dlqUsage()}`)
    return 2
  }
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
