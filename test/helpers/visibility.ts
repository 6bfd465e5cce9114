// When records become visible to a reader, by the reader's own clock: "never early" is checked against the
// moment a committed record could first be read (Date.now() when the fetch that returned it came back), not
// against a timestamp the producer wrote, which is the same clock reading that chose what was due.
import { createPartitionReader } from '../../kafka/index.ts'
import type { ConsumedRecord } from '../../kafka/index.ts'
import { admin, brokers, kafkaSecurity } from './kafka.ts'
import { waitFor } from './wait.ts'

export interface SeenRecord {
  readonly record: ConsumedRecord
  /** Date.now() when the fetch that returned the record came back. */
  readonly seenAt: number
}

export interface TopicWatch {
  /** Every committed record read so far, in the order read. */
  readonly seen: readonly SeenRecord[]
  /** Waits until `condition` holds for what was read (bounded; WEIR_ERR_TIMEOUT otherwise). */
  until(condition: (seen: readonly SeenRecord[]) => boolean, what: string, timeoutMs?: number): Promise<void>
  /** Stops reading (a failure after the last `until` is not reported: the topic may be gone by then). */
  stop(): Promise<void>
}

/**
 * Reads every partition of `topic` from the beginning, read_committed, with short fetch waits (100 ms), until
 * stopped. Start it before anything can be written to the topic.
 */
export async function watchTopic(topic: string): Promise<TopicWatch> {
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers: brokers(), maxWaitMs: 100 })
  const count = await admin().partitionCount(topic)
  const partitions = Array.from({ length: count }, (_, partition) => ({ topic, partition }))
  const positions = new Map((await reader.offsets(partitions, 'earliest')).map((o) => [o.partition, o.offset]))
  const seen: SeenRecord[] = []
  let stopped = false
  let failure: unknown
  const loop = (async () => {
    while (!stopped) {
      const batches = await reader.fetch([...positions].map(([partition, offset]) => ({ topic, partition, offset })))
      const seenAt = Date.now()
      for (const batch of batches) {
        for (const record of batch.records) seen.push({ record, seenAt })
        positions.set(batch.partition, batch.nextOffset)
      }
    }
  })().catch((error: unknown) => {
    failure = error
  })
  const check = () => {
    if (failure !== undefined) throw failure
  }
  return {
    seen,
    async until(condition, what, timeoutMs = 30_000) {
      await waitFor(() => failure !== undefined || condition(seen), { what, timeoutMs })
      check()
    },
    async stop() {
      stopped = true
      await loop
      await reader.close()
    },
  }
}

/** The first time each id (from `idOf`) was seen. */
export function firstSeen(seen: readonly SeenRecord[], idOf: (record: ConsumedRecord) => string | undefined): Map<string, number> {
  const first = new Map<string, number>()
  for (const { record, seenAt } of seen) {
    const id = idOf(record)
    if (id !== undefined && !first.has(id)) first.set(id, seenAt)
  }
  return first
}
