// Bounded produce requests. @platformatic/kafka writes all records of one send that go to the same partition
// as one record batch, and a broker refuses a batch larger than its max.message.bytes (1 MiB by default) with
// MESSAGE_TOO_LARGE. A busy task can stage more than that between two commits, so every send is cut into
// chunks of at most MAX_SEND_BYTES (estimated), sent one after another in order.
import type { OutgoingRecord } from './types.ts'

/** Upper bound of one produce call's records, estimated; half the broker's default max.message.bytes. */
export const MAX_SEND_BYTES = 512 * 1024

// Per-record overhead of the v2 record format (length, attributes, deltas, varints), rounded up.
const RECORD_OVERHEAD = 24

const byteLength = (value: Buffer | string | null | undefined): number =>
  value === null || value === undefined ? 0 : typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength

/** Approximate size of a record in a record batch. */
export function estimateRecordBytes(record: OutgoingRecord): number {
  let size = RECORD_OVERHEAD + byteLength(record.key) + byteLength(record.value)
  if (record.headers !== undefined) for (const [name, value] of Object.entries(record.headers)) size += 8 + Buffer.byteLength(name) + byteLength(value)
  return size
}

/** Splits records, in order, into runs whose estimated size stays within `maxBytes` (a larger record goes alone). */
export function chunkRecords(records: readonly OutgoingRecord[], maxBytes = MAX_SEND_BYTES): OutgoingRecord[][] {
  const chunks: OutgoingRecord[][] = []
  let current: OutgoingRecord[] = []
  let size = 0
  for (const record of records) {
    const bytes = estimateRecordBytes(record)
    if (current.length > 0 && size + bytes > maxBytes) {
      chunks.push(current)
      current = []
      size = 0
    }
    current.push(record)
    size += bytes
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}
