// The dead letter's format: one header set whoever writes it (the runtime's error policy, the command router,
// any processor), built here and nowhere else (docs/processors.md, "Dead letters"). It sits in the topology API,
// not the runtime, so processors/ and worker/ (`weir dlq`) read and write the same names. Making a dead letter
// fit its topic is the runtime's (topology/runtime/dead-letter-fit.ts).
import type { WeirError } from '../core/errors.ts'
import type { OutgoingRecord } from '../kafka/types.ts'

export const DEAD_LETTER_HEADERS = {
  code: 'weir.error.code',
  message: 'weir.error.message',
  topic: 'weir.origin.topic',
  partition: 'weir.origin.partition',
  offset: 'weir.origin.offset',
  timestamp: 'weir.origin.timestamp',
  processor: 'weir.processor',
  attempts: 'weir.attempts',
  keySize: 'weir.key.size',
  valueSize: 'weir.value.size',
  valueSha256: 'weir.value.sha256',
  truncated: 'weir.truncated',
} as const

/** What a dead letter can have lost to fit: its value's tail, the record's own headers, its key's tail. */
export type TruncatedPart = 'value' | 'headers' | 'key'

/** Longest weir.error.message, in UTF-8 bytes. */
export const MAX_ERROR_MESSAGE_BYTES = 1024

export interface DeadLetterOrigin {
  topic: string
  partition: number
  offset: bigint
  timestamp: bigint
  headers?: ReadonlyMap<string, Buffer>
  processor: string
  attempts: number
}

/**
 * The headers describing a failure: the origin record's own headers without its weir.* ones (a dead letter's
 * weir.* headers always describe this failure, never an earlier one), then the weir.* failure headers.
 * Size, hash and truncation headers are added by fitDeadLetter, which every dead letter passes through.
 */
export function deadLetterHeaders(error: WeirError, origin: DeadLetterOrigin): Record<string, Buffer | string> {
  const headers: Record<string, Buffer | string> = {}
  for (const [name, value] of origin.headers ?? []) if (!name.startsWith('weir.')) headers[name] = value
  headers[DEAD_LETTER_HEADERS.code] = error.code
  headers[DEAD_LETTER_HEADERS.message] = cutUtf8(error.message, MAX_ERROR_MESSAGE_BYTES)
  headers[DEAD_LETTER_HEADERS.topic] = origin.topic
  headers[DEAD_LETTER_HEADERS.partition] = String(origin.partition)
  headers[DEAD_LETTER_HEADERS.offset] = String(origin.offset)
  headers[DEAD_LETTER_HEADERS.timestamp] = String(origin.timestamp)
  headers[DEAD_LETTER_HEADERS.processor] = origin.processor
  headers[DEAD_LETTER_HEADERS.attempts] = String(origin.attempts)
  return headers
}

/** True for a record built with deadLetterHeaders (it carries weir.error.code). */
export function isDeadLetter(record: OutgoingRecord): boolean {
  return record.headers !== undefined && DEAD_LETTER_HEADERS.code in record.headers
}

/** `text` cut to at most `max` UTF-8 bytes, never inside a character. */
function cutUtf8(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text
  let cut = Buffer.from(text, 'utf8').subarray(0, max).toString('utf8')
  // A character split at the cut decodes as U+FFFD: drop it.
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1)
  return cut
}
