// A dead letter as `weir dlq` reads it: the weir.* headers (topology/dead-letter.ts) turned back into fields,
// and the coded refusal of one that was cut to fit its topic.
import { WeirError } from '../../core/errors.ts'
import type { ConsumedRecord } from '../../kafka/index.ts'
import { DEAD_LETTER_HEADERS } from '../../topology/dead-letter.ts'
import type { TruncatedPart } from '../../topology/dead-letter.ts'

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
