// One exactly-once transaction after another through weir's Kafka adapter, each timed by step: the floor under
// every latency of weir that ends in a commit. bench:transaction runs it (against Kafka's Java client), and
// bench:partition runs it beside delayed delivery, whose lateness is reported as a ratio to it.
//   send     one record to partition 0 of each of `topics` topics, acknowledged (acks=all; AddPartitionsToTxn first)
//   offsets  one consumer offset for a group in the transaction (AddOffsetsToTxn, TxnOffsetCommit)
//   commit   EndTxn
//   visible  until a read_committed reader sees the transaction's record in the first topic (markers written)
//   total    all of the above
import { createAdmin, createGroupMember, createPartitionReader, createProducer } from '../kafka/index.ts'
import { kafkaSecurity } from '../test/helpers/kafka.ts'

export const STEPS = ['send', 'offsets', 'commit', 'visible', 'total'] as const
export type Step = (typeof STEPS)[number]
export type Percentiles = { p50: number; p90: number; p99: number }
export type TransactionSummary = Record<Step, Percentiles>

export interface ProbeSettings {
  readonly transactions: number
  readonly warmup: number
  readonly topics: number
  readonly valueBytes: number
}

/** The defaults of bench:transaction: 50 transactions of warm-up, 500 measured, 8 partitions, 200 B. */
export const DEFAULT_PROBE: ProbeSettings = { transactions: 500, warmup: 50, topics: 8, valueBytes: 200 }

export function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number) * 100) / 100
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) }
}

/** Creates the probe's topics: `<prefix>-t0..` (written) and `<prefix>-in` (whose offsets are committed). */
export async function createProbeTopics(brokers: string[], prefix: string, count: number): Promise<{ topics: string[]; input: string }> {
  const admin = createAdmin({ ...kafkaSecurity(), brokers })
  try {
    const topics = Array.from({ length: count }, (_, i) => `${prefix}-t${i}`)
    const input = `${prefix}-in`
    await admin.createTopics([...topics, input].map((name) => ({ name, partitions: 1 })))
    return { topics, input }
  } finally {
    await admin.close()
  }
}

/** Runs the probe through weir's adapter on topics of its own; `cleanUp` deletes them afterwards. */
export async function probeWeirTransactions(brokers: string[], prefix: string, settings: ProbeSettings = DEFAULT_PROBE, cleanUp = false): Promise<TransactionSummary> {
  const { topics, input } = await createProbeTopics(brokers, prefix, settings.topics)
  const member = createGroupMember({ ...kafkaSecurity(), brokers, groupId: `${prefix}-g`, topics: [input] })
  const producer = createProducer({ ...kafkaSecurity(), brokers, transactionalId: `${prefix}-tx` })
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers, isolation: 'read_committed', maxWaitMs: 500 })
  const samples: Record<Step, number[]> = { send: [], offsets: [], commit: [], visible: [], total: [] }
  const value = Buffer.alloc(settings.valueBytes)
  const watched = topics[0] as string
  try {
    await member.join()
    for (let n = 0; n < settings.warmup + settings.transactions; n++) {
      const t0 = performance.now()
      const tx = await producer.beginTransaction()
      const written = await tx.send(topics.map((topic) => ({ topic, partition: 0, key: Buffer.from(`k${n}`), value })))
      const target = written.find((w) => w.topic === watched)?.offset ?? 0n
      const t1 = performance.now()
      await tx.sendOffsets(member, [{ topic: input, partition: 0, offset: BigInt(n) }])
      const t2 = performance.now()
      await tx.commit()
      const t3 = performance.now()
      for (let seen = false; !seen; ) {
        for (const batch of await reader.fetch([{ topic: watched, partition: 0, offset: target }], { maxWaitMs: 500 })) {
          if (batch.records.some((r) => r.offset >= target)) seen = true
        }
      }
      const t4 = performance.now()
      if (n < settings.warmup) continue
      samples.send.push(t1 - t0)
      samples.offsets.push(t2 - t1)
      samples.commit.push(t3 - t2)
      samples.visible.push(t4 - t3)
      samples.total.push(t4 - t0)
    }
  } finally {
    await producer.close().catch(() => {})
    await reader.close().catch(() => {})
    await member.close().catch(() => {})
    if (cleanUp) {
      const admin = createAdmin({ ...kafkaSecurity(), brokers })
      await admin.deleteTopics([...topics, input]).catch(() => {})
      await admin.close().catch(() => {})
    }
  }
  return Object.fromEntries(STEPS.map((s) => [s, percentiles(samples[s])])) as TransactionSummary
}
