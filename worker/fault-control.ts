// The fault control topic (docs/faults.md): one compacted partition of JSON records keyed by rule id. The
// worker reads it from the start before its runtime starts, so the rules in force when processing begins are
// the topic's, and a worker restarted after a crash injects what the others inject; then it follows the topic,
// so a test turns a rule on and off without restarting anything. A malformed record is refused (coded,
// published on weir:faults:rule, counted) and skipped.
import { WeirError } from '../core/errors.ts'
import { createAdmin, createPartitionReader, withReplication } from '../kafka/index.ts'
import type { KafkaConnection, ReplicationSettings, TopicPartitionOffset } from '../kafka/index.ts'
import type { FaultInjector } from '../processors/faults/injector.ts'

export interface FaultControlOptions {
  brokers: readonly string[]
  connection?: KafkaConnection | undefined
  replication?: ReplicationSettings
  topic: string
  injector: FaultInjector
  /** How long the first read (up to the end of the topic) may take, ms (default 30 s). */
  catchUpTimeoutMs?: number
}

export interface FaultControl {
  readonly topic: string
  close(): Promise<void>
}

/** Creates the control topic if needed, applies every record in it, and keeps applying new ones until closed. */
export async function startFaultControl(options: FaultControlOptions): Promise<FaultControl> {
  const { topic, injector } = options
  const admin = createAdmin({ brokers: [...options.brokers], connection: options.connection, clientId: 'weir-faults' })
  try {
    await admin.createTopics(withReplication([{ name: topic, partitions: 1, configs: { 'cleanup.policy': 'compact' } }], options.replication))
  } finally {
    await admin.close().catch(() => {})
  }
  const reader = createPartitionReader({ brokers: [...options.brokers], connection: options.connection, clientId: 'weir-faults', maxWaitMs: 200 })
  const partition = { topic, partition: 0 }
  let position: TopicPartitionOffset
  let end: bigint
  try {
    ;[position] = (await reader.offsets([partition], 'earliest')) as [TopicPartitionOffset]
    ;[{ offset: end }] = (await reader.offsets([partition], 'latest')) as [TopicPartitionOffset]
  } catch (error) {
    await reader.close().catch(() => {})
    throw error
  }
  const readOnce = async () => {
    const batches = await reader.fetch([position], { maxWaitMs: 200 })
    for (const batch of batches) {
      // Compaction moved the log start past the position: read on from the new start.
      if (batch.outOfRange === true) [position] = (await reader.offsets([partition], 'earliest')) as [TopicPartitionOffset]
      else {
        for (const record of batch.records) injector.applyRecord(record.value, { topic, partition: 0, offset: record.offset })
        position = { ...partition, offset: batch.nextOffset }
      }
    }
  }
  const deadline = Date.now() + (options.catchUpTimeoutMs ?? 30_000)
  try {
    while (position.offset < end) {
      if (Date.now() > deadline) throw new WeirError('WEIR_ERR_TIMEOUT', `fault control topic ${topic}: not read to its end (${end}) within the catch-up timeout`)
      await readOnce()
    }
  } catch (error) {
    await reader.close().catch(() => {})
    throw error
  }
  let closed = false
  const loop = (async () => {
    while (!closed) {
      try {
        await readOnce()
      } catch {
        // A broker restart fails fetches for a while; the rules in force stay until the topic answers again.
        if (!closed) await new Promise((r) => setTimeout(r, 500))
      }
    }
  })()
  return {
    topic,
    async close() {
      closed = true
      await loop
      await reader.close().catch(() => {})
    },
  }
}
