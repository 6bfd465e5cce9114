// Reading a dead-letter topic: every partition from a start position up to the end it had when the read began.
import { WeirError } from '../../core/errors.ts'
import { createAdmin, createPartitionReader } from '../../kafka/index.ts'
import type { ConsumedRecord, KafkaConnection } from '../../kafka/index.ts'

export interface ReadOptions {
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
export async function readToEnd(
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
