// `weir dlq inspect` as a function: the dead letters of a topic, filtered by code, in partition and offset order.
import { invalidOptions } from '../../core/errors.ts'
import { describeDeadLetter } from './letter.ts'
import type { DeadLetter } from './letter.ts'
import { readToEnd } from './read.ts'
import type { ReadOptions } from './read.ts'

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
