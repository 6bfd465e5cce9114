// Tails topics with read_committed from their first offset and stamps each record with the reader's own clock
// when a fetch returned it: the moment the record was (at the latest) visible to a reader. Checks of "never
// early" compare that stamp with the due time; the record's own timestamp is the worker's clock value that
// chose the due timers, so it is never before the due time whatever the worker did.
import { WeirError } from '../../core/errors.ts'
import { createPartitionReader, keyOfPartition } from '../../kafka/index.ts'
import type { ConsumedRecord, TopicPartition } from '../../kafka/index.ts'
import { admin, brokers, kafkaSecurity } from './kafka.ts'

export interface TailedRecord {
  readonly record: ConsumedRecord
  /** Date.now() when the fetch that returned the record completed. */
  readonly visibleAt: number
}

export interface Tail {
  /** Every record read so far, in the order read (per partition: offset order). */
  readonly records: readonly TailedRecord[]
  /** Resolves once every partition has been read up to its end offset (read_committed) as of this call. */
  caughtUp(timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

export async function tailTopics(topics: readonly string[]): Promise<Tail> {
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers: brokers(), maxWaitMs: 100 })
  const partitions: TopicPartition[] = []
  for (const topic of topics) {
    const count = await admin().partitionCount(topic)
    for (let partition = 0; partition < count; partition++) partitions.push({ topic, partition })
  }
  const id = keyOfPartition
  const positions = new Map<string, bigint>((await reader.offsets(partitions, 'earliest')).map((o) => [id(o), o.offset]))
  const records: TailedRecord[] = []
  let closed = false
  let failure: unknown
  const loop = (async () => {
    // A broker restart (chaos on a cluster) fails fetches for a while: the tail waits it out, up to a minute.
    let failingSince: number | undefined
    while (!closed) {
      let batches: Awaited<ReturnType<typeof reader.fetch>>
      try {
        batches = await reader.fetch(partitions.map((p) => ({ ...p, offset: positions.get(id(p)) ?? 0n })), { maxWaitMs: 100 })
        failingSince = undefined
      } catch (error) {
        failingSince ??= Date.now()
        if (Date.now() - failingSince > 60_000) throw error
        await new Promise((r) => setTimeout(r, 200))
        continue
      }
      const visibleAt = Date.now()
      for (const batch of batches) {
        for (const record of batch.records) records.push({ record, visibleAt })
        positions.set(id(batch), batch.nextOffset)
      }
    }
  })().catch((error: unknown) => {
    failure = error
  })
  return {
    records,
    async caughtUp(timeoutMs = 120_000) {
      const ends = createPartitionReader({ ...kafkaSecurity(), brokers: brokers() })
      let targets: Awaited<ReturnType<typeof ends.offsets>>
      try {
        targets = await ends.offsets(partitions, 'latest')
      } finally {
        await ends.close()
      }
      const deadline = Date.now() + timeoutMs
      for (;;) {
        if (failure !== undefined) throw new WeirError('WEIR_ERR_TIMEOUT', `tail of ${topics.join(', ')} stopped`, { cause: failure })
        if (targets.every((t) => (positions.get(id(t)) ?? 0n) >= t.offset)) return
        if (Date.now() > deadline) throw new WeirError('WEIR_ERR_TIMEOUT', `tail of ${topics.join(', ')} did not reach the end offsets in ${timeoutMs} ms`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    async close() {
      closed = true
      await loop
      await reader.close()
    },
  }
}
