// A dead letter that always fits its topic (docs/processors.md, "Dead letters").
//
// A dead letter is produced in the task's transaction. If it were larger than the topic's max.message.bytes
// the broker would refuse the whole transaction, the task would re-open and meet the same record again: one
// record would stop its partition. So a dead letter that would not fit keeps its headers and as much of the
// value as fits, says so (weir.truncated), and carries the full value's size and SHA-256.
import { createHash } from 'node:crypto'

import type { OutgoingRecord } from '../../kafka/types.ts'
import { DEAD_LETTER_HEADERS } from '../dead-letter.ts'
import type { TruncatedPart } from '../dead-letter.ts'

/** Kafka's default max.message.bytes (1 MiB + 12): the limit when nothing better is known. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588

// A record batch holding one record: the batch header (61 bytes) plus the record's own framing (length,
// attributes, timestamp and offset deltas, key and value lengths, header count: varints), with room to spare.
const BATCH_OVERHEAD = 61 + 40
// Per header: the name's and the value's length varints.
const HEADER_OVERHEAD = 10

const bytesOf = (value: Buffer | string | null | undefined): Buffer | null =>
  value === null || value === undefined ? null : typeof value === 'string' ? Buffer.from(value, 'utf8') : value

const headerBytes = (name: string, value: Buffer | string) => HEADER_OVERHEAD + Buffer.byteLength(name) + (typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength)

/**
 * Adds weir.key.size, weir.value.size and weir.value.sha256 (of the full value) to a dead letter and makes it fit
 * a topic whose max.message.bytes is `maxBytes`: first the value is cut, then the record's own headers are
 * dropped, then the key is cut; weir.truncated lists what was cut. The weir.* headers always stay.
 */
export function fitDeadLetter(record: OutgoingRecord, maxBytes: number): OutgoingRecord {
  const key = bytesOf(record.key)
  const value = bytesOf(record.value)
  const weir: Record<string, Buffer | string> = {}
  const own: Record<string, Buffer | string> = {}
  let earlier: string[] = []
  for (const [name, header] of Object.entries(record.headers ?? {})) {
    if (name === DEAD_LETTER_HEADERS.truncated) earlier = header.toString().split(',').filter((part) => part !== '')
    else if (name.startsWith('weir.')) weir[name] = header
    else own[name] = header
  }
  // A letter fitted before (a topology forwarding dead letters) keeps the sizes and hash of the original record.
  if (weir[DEAD_LETTER_HEADERS.valueSha256] === undefined) {
    weir[DEAD_LETTER_HEADERS.keySize] = String(key === null ? -1 : key.byteLength)
    weir[DEAD_LETTER_HEADERS.valueSize] = String(value === null ? -1 : value.byteLength)
    weir[DEAD_LETTER_HEADERS.valueSha256] = createHash('sha256')
      .update(value ?? Buffer.alloc(0))
      .digest('hex')
  }
  const marked = (parts: readonly string[]): Record<string, string> => (parts.length === 0 ? {} : { [DEAD_LETTER_HEADERS.truncated]: parts.join(',') })
  const sum = (headers: Record<string, Buffer | string>) => Object.entries(headers).reduce((total, [name, header]) => total + headerBytes(name, header), 0)
  // Room for the longest marker, so adding it never breaks the budget.
  const marker = headerBytes(DEAD_LETTER_HEADERS.truncated, 'value,headers,key')
  const fixed = BATCH_OVERHEAD + sum(weir)
  const ownBytes = sum(own)
  const keyBytes = key?.byteLength ?? 0
  const valueBytes = value?.byteLength ?? 0
  if (fixed + ownBytes + keyBytes + valueBytes <= maxBytes) return { ...record, headers: { ...own, ...weir, ...marked(earlier) } }

  const budget = maxBytes - fixed - marker
  const keepHeaders = ownBytes + keyBytes <= budget
  const keptKey = key === null || keyBytes <= budget - (keepHeaders ? ownBytes : 0) ? key : key.subarray(0, Math.max(0, budget))
  const room = budget - (keepHeaders ? ownBytes : 0) - (keptKey?.byteLength ?? 0)
  const keptValue = value === null ? null : value.subarray(0, Math.max(0, Math.min(value.byteLength, room)))
  const cut = new Set(earlier)
  if (keptValue !== null && keptValue.byteLength < valueBytes) cut.add('value')
  if (!keepHeaders && ownBytes > 0) cut.add('headers')
  if (keptKey !== null && keptKey.byteLength < keyBytes) cut.add('key')
  const order: readonly TruncatedPart[] = ['value', 'headers', 'key']
  const truncated = [...order.filter((part) => cut.has(part)), ...[...cut].filter((part) => !order.includes(part as TruncatedPart))]
  const keptHeaders = keepHeaders ? own : {}
  return {
    ...record,
    key: keptKey,
    value: keptValue,
    headers: { ...keptHeaders, ...weir, ...marked(truncated) },
  }
}
