// Headers a dead letter carries, so it can be understood and re-injected after a fix.
import type { WeirError } from '../../core/errors.ts'

export const DEAD_LETTER_HEADERS = {
  code: 'weir.error.code',
  message: 'weir.error.message',
  topic: 'weir.origin.topic',
  partition: 'weir.origin.partition',
  offset: 'weir.origin.offset',
  timestamp: 'weir.origin.timestamp',
  processor: 'weir.processor',
  attempts: 'weir.attempts',
} as const

export interface DeadLetterOrigin {
  topic: string
  partition: number
  offset: bigint
  timestamp: bigint
  headers?: ReadonlyMap<string, Buffer>
  processor: string
  attempts: number
}

/** The origin's own headers, plus weir.* headers describing the failure (message capped at 1 KiB). */
export function deadLetterHeaders(error: WeirError, origin: DeadLetterOrigin): Record<string, Buffer | string> {
  const headers: Record<string, Buffer | string> = {}
  for (const [name, value] of origin.headers ?? []) if (!name.startsWith('weir.')) headers[name] = value
  headers[DEAD_LETTER_HEADERS.code] = error.code
  headers[DEAD_LETTER_HEADERS.message] = error.message.slice(0, 1024)
  headers[DEAD_LETTER_HEADERS.topic] = origin.topic
  headers[DEAD_LETTER_HEADERS.partition] = String(origin.partition)
  headers[DEAD_LETTER_HEADERS.offset] = String(origin.offset)
  headers[DEAD_LETTER_HEADERS.timestamp] = String(origin.timestamp)
  headers[DEAD_LETTER_HEADERS.processor] = origin.processor
  headers[DEAD_LETTER_HEADERS.attempts] = String(origin.attempts)
  return headers
}
