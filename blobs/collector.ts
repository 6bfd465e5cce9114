// The orphan collector: mark and sweep. It reads every topic that may hold references, from its earliest
// offset to its end, read_committed, and marks each blob key it finds in a record's bytes (value and headers:
// a reference inside a scheduled envelope or a dead letter counts as well as one in a plain envelope). Then it
// deletes every blob that is not marked and was written longer ago than the grace period. An aborted
// transaction's records are never read, so its blobs are orphans; a record that the topic's retention deleted
// marks nothing any more, so its blob goes too: a blob lives as long as a record that references it, plus the
// grace period (docs/payloads.md).
import { invalidOptions } from '../core/errors.ts'
import { createAdmin, createPartitionReader } from '../kafka/index.ts'
import type { KafkaConnection } from '../kafka/index.ts'
import type { BlobStore } from './blob-store.ts'
import { BLOB_KEY_PATTERN } from './claim-check.ts'

/** Longer than any transaction stays open (Kafka's transaction timeout is 60 s by default) and any upload waits for its command. */
export const DEFAULT_GRACE_MS = 60 * 60_000

export interface CollectorOptions {
  store: BlobStore
  /** Every topic whose records may reference the store's blobs (commands, results, events, dead letters, scheduler). */
  topics: readonly string[]
  brokers: readonly string[]
  connection?: KafkaConnection
  /** Blobs younger than this are kept whatever the topics say (default 1 hour). */
  graceMs?: number
  now?: () => number
  clientId?: string
  /** Report what would be deleted without deleting it. */
  dryRun?: boolean
}

export interface CollectionReport {
  readonly recordsRead: number
  readonly referenced: number
  readonly blobs: number
  /** The orphans deleted (with dryRun: the ones that would be). */
  readonly deleted: readonly string[]
}

export async function collectOrphanBlobs(options: CollectorOptions): Promise<CollectionReport> {
  const violations: string[] = []
  if (options?.store === undefined) violations.push('store is required')
  if (!Array.isArray(options?.topics)) violations.push('topics must be an array of topic names')
  const graceMs = options?.graceMs ?? DEFAULT_GRACE_MS
  if (!Number.isInteger(graceMs) || graceMs < 0) violations.push('graceMs must be a non-negative integer')
  if (violations.length > 0) throw invalidOptions('collectOrphanBlobs', violations)
  // The cut-off is taken before the topics are read: a blob older than it whose transaction committed is in
  // what the read sees.
  const cutoff = (options.now ?? Date.now)() - graceMs
  const marked = new Set<string>()
  let recordsRead = 0
  const brokers = [...options.brokers]
  const clientId = options.clientId ?? 'weir-blob-collector'
  const admin = createAdmin({ brokers, connection: options.connection, clientId })
  const reader = createPartitionReader({ brokers, connection: options.connection, clientId, maxWaitMs: 100 })
  const mark = (bytes: Buffer | undefined) => {
    if (bytes === undefined) return
    for (const match of bytes.toString('latin1').matchAll(BLOB_KEY_PATTERN)) marked.add(match[0])
  }
  try {
    for (const topic of options.topics) {
      const count = await admin.partitionCount(topic)
      const partitions = Array.from({ length: count }, (_, partition) => ({ topic, partition }))
      const ends = new Map((await reader.offsets(partitions, 'latest')).map((o) => [o.partition, o.offset]))
      const positions = new Map((await reader.offsets(partitions, 'earliest')).map((o) => [o.partition, o.offset]))
      const open = () => [...positions].filter(([p, offset]) => offset < (ends.get(p) ?? 0n)).map(([partition, offset]) => ({ topic, partition, offset }))
      for (let todo = open(); todo.length > 0; todo = open()) {
        for (const batch of await reader.fetch(todo)) {
          if (batch.outOfRange) {
            // Retention deleted the records meanwhile: start over at the new log start.
            const [earliest] = await reader.offsets([{ topic, partition: batch.partition }], 'earliest')
            positions.set(batch.partition, earliest?.offset ?? ends.get(batch.partition) ?? 0n)
            continue
          }
          for (const record of batch.records) {
            recordsRead++
            mark(record.value)
            for (const value of record.headers.values()) mark(value)
          }
          positions.set(batch.partition, batch.nextOffset)
        }
      }
    }
  } finally {
    await reader.close().catch(() => {})
    await admin.close().catch(() => {})
  }
  const deleted: string[] = []
  let blobs = 0
  for await (const entry of options.store.list('payloads/')) {
    blobs++
    if (marked.has(entry.key) || entry.lastModified > cutoff) continue
    if (options.dryRun !== true) await options.store.delete(entry.key)
    deleted.push(entry.key)
  }
  return { recordsRead, referenced: marked.size, blobs, deleted }
}
