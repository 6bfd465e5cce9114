// Partition throughput of one system: how fast its outputs become visible to a read_committed reader in the bench
// process. Two shapes: run* (the cold run, bench:partition --cold) processes preloaded input to the end; start*
// leaves the system running for a steady-state window (bench/steady-state.ts measures it from outside).
// In the cold run every system is timed from the moment it is ready to process
// (weir: its worker reports every partition assigned and restored; Kafka Streams: the RUNNING state; the raw
// client: group joined) to its last output visible, so process start, group join and restore are left out.
// (The first-to-last-output window is not used: a system that commits in a few large transactions would look
// infinitely fast.) CPU and peak RSS are read from /proc for the systems that run in their own process.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { createGroupMember, createPartitionReader, createProducer } from '../kafka/index.ts'
import type { KafkaAdmin, KafkaProducer } from '../kafka/index.ts'
import { spawnWorker, waitForAssignment } from '../test/helpers/workers.ts'
import { processUsage } from './baselines/kafka-streams.ts'
import { kafkaSecurity } from '../test/helpers/kafka.ts'

export interface ThroughputSample {
  /** Outputs per second: cold, ready to the last output visible; steady state, over the measured window. */
  recordsPerSecond: number
  seconds: number
  cpuSeconds: number
  /** Outputs the rate and the CPU are over. */
  records: number
  peakRssMb: number
}

/** The figures of one system in one scenario: medians over the runs (peak RSS: the largest). */
export interface Figures {
  recordsPerSecond: number
  /** records/s of the slowest and the fastest run (the median is recordsPerSecond). */
  minRecordsPerSecond: number
  maxRecordsPerSecond: number
  perPartitionRecordsPerSecond: number
  cpuSecondsPerMillion: number
  peakRssMb: number
  runs: number[]
}

export interface OutputWatch {
  /** Resolves when `expected` records are visible; first/last visible times in ms. */
  done: Promise<{ firstAt: number; lastAt: number }>
  stop(): Promise<void>
}

/** Reads `topic` from its start at read_committed, counting records, until `expected` arrived. */
export function watchOutputs(brokers: string[], admin: KafkaAdmin, topic: string, expected: number, timeoutMs: number, alive: () => string | undefined): OutputWatch {
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers, isolation: 'read_committed', maxWaitMs: 20 })
  let stopped = false
  const done = (async () => {
    const started = Date.now()
    const count = await admin.partitionCount(topic)
    const positions = new Map(Array.from({ length: count }, (_, p) => [p, 0n]))
    let seen = 0
    let firstAt = 0
    let lastAt = 0
    while (seen < expected) {
      if (stopped) throw new Error('stopped')
      const problem = alive()
      if (problem !== undefined) throw new Error(problem)
      if (Date.now() - started > timeoutMs) throw new Error(`${seen} of ${expected} outputs on ${topic} after ${timeoutMs} ms`)
      const batches = await reader.fetch([...positions].map(([partition, offset]) => ({ topic, partition, offset })))
      const now = Date.now()
      for (const batch of batches) {
        positions.set(batch.partition, batch.nextOffset)
        if (batch.records.length === 0) continue
        if (firstAt === 0) firstAt = now
        lastAt = now
        seen += batch.records.length
      }
    }
    return { firstAt, lastAt }
  })()
  return {
    done,
    async stop() {
      stopped = true
      await done.catch(() => {})
      await reader.close()
    },
  }
}

export function rate(records: number, readyAt: number, lastAt: number): number {
  return Math.round(records / Math.max(0.001, (lastAt - readyAt) / 1000))
}

/** weir in a worker process (worker/cli.ts) running `module`, timed on `output`. */
export async function runWeirWorker(options: {
  brokers: string[]
  admin: KafkaAdmin
  module: string
  applicationId: string
  env: Record<string, string>
  partitions: number
  output: string
  expected: number
  exactlyOnce: boolean
}): Promise<ThroughputSample> {
  const stateDir = await mkdtemp(join(tmpdir(), 'weir-bench-'))
  const worker = spawnWorker({
    name: 'weir-bench',
    module: options.module,
    brokers: options.brokers,
    stateDir,
    applicationId: options.applicationId,
    env: options.env,
    extraArgs: options.exactlyOnce ? [] : ['--commit-interval-ms', '1000'],
  })
  const watch = watchOutputs(options.brokers, options.admin, options.output, options.expected, 10 * 60_000, () =>
    worker.child.exitCode === null ? undefined : `the weir worker exited (${worker.child.exitCode}):\n${worker.logs().slice(-3000)}`,
  )
  try {
    // Polled every 200 ms: processing may start up to that much before readyAt (a bias in weir's favour of at
    // most 0.2 s per run, stated in docs/benchmarks.md).
    await waitForAssignment([worker], options.partitions, 120_000)
    const readyAt = Date.now()
    const { lastAt } = await watch.done
    const usage = await processUsage(worker.child.pid as number)
    return { recordsPerSecond: rate(options.expected, readyAt, lastAt), seconds: (lastAt - readyAt) / 1000, records: options.expected, ...usage }
  } finally {
    await watch.stop()
    await worker.kill('SIGTERM')
    await rm(stateDir, { recursive: true, force: true })
  }
}

/**
 * The raw client ceiling: the same Kafka adapter with no runtime and no state, in the bench process: fetch ->
 * produce -> one transaction per fetched batch (input offsets included). What the runtime costs on top of the client.
 */
export async function runRawClient(options: { brokers: string[]; admin: KafkaAdmin; input: string; output: string; records: number; run: string; exactlyOnce: boolean }): Promise<ThroughputSample> {
  const { brokers, input, output } = options
  const member = createGroupMember({ ...kafkaSecurity(), brokers, groupId: `bench-raw-${options.run}`, topics: [input] })
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers, maxWaitMs: 100 })
  const producers = new Map<number, KafkaProducer>()
  const watch = watchOutputs(brokers, options.admin, output, options.records, 10 * 60_000, () => undefined)
  const cpu = process.cpuUsage()
  try {
    const assigned = await member.join()
    const positions = new Map(assigned.map((p) => [p.partition, 0n]))
    for (const p of assigned) producers.set(p.partition, createProducer({ ...kafkaSecurity(), brokers, transactionalId: `bench-raw-${options.run}-${p.partition}` }))
    const readyAt = Date.now()
    let done = 0
    while (done < options.records) {
      const batches = await reader.fetch([...positions].map(([partition, offset]) => ({ topic: input, partition, offset })))
      await Promise.all(
        batches.map(async (batch) => {
          if (batch.records.length === 0) return
          const producer = producers.get(batch.partition) as KafkaProducer
          const outputs = batch.records.map((r) => ({ topic: output, key: r.key ?? null, value: r.value ?? null }))
          if (options.exactlyOnce) {
            const tx = await producer.beginTransaction()
            await tx.send(outputs)
            await tx.sendOffsets(member, [{ topic: input, partition: batch.partition, offset: batch.nextOffset }])
            await tx.commit()
          } else {
            await producer.send(outputs)
          }
          positions.set(batch.partition, batch.nextOffset)
          done += batch.records.length
        }),
      )
    }
    const { lastAt } = await watch.done
    const used = process.cpuUsage(cpu)
    return {
      recordsPerSecond: rate(options.records, readyAt, lastAt),
      seconds: (lastAt - readyAt) / 1000,
      records: options.records,
      // The bench process also runs the output reader: an upper bound of the client's own CPU.
      cpuSeconds: (used.user + used.system) / 1e6,
      peakRssMb: process.memoryUsage().rss / 1024 / 1024,
    }
  } finally {
    await watch.stop()
    for (const producer of producers.values()) await producer.close()
    await reader.close()
    await member.close()
  }
}

/** A system started for a steady-state run: it keeps processing whatever is fed until stopped. */
export interface RunningSystem {
  /** Epoch ms at which it was ready to process (see the file comment). */
  readonly readyAt: number
  /** CPU seconds used so far (a running total). */
  cpuSeconds(): Promise<number>
  peakRssMb(): Promise<number>
  /** Why it stopped working, else undefined. */
  problem(): string | undefined
  stop(): Promise<void>
}

/** weir in a worker process, ready when every partition is assigned and restored, left running. */
export async function startWeirWorker(options: { brokers: string[]; module: string; applicationId: string; env: Record<string, string>; partitions: number; exactlyOnce: boolean }): Promise<RunningSystem> {
  const stateDir = await mkdtemp(join(tmpdir(), 'weir-bench-'))
  const worker = spawnWorker({
    name: 'weir-bench',
    module: options.module,
    brokers: options.brokers,
    stateDir,
    applicationId: options.applicationId,
    env: options.env,
    extraArgs: options.exactlyOnce ? [] : ['--commit-interval-ms', '1000'],
  })
  let stopping = false
  const stop = async () => {
    stopping = true
    await worker.kill('SIGTERM')
    await rm(stateDir, { recursive: true, force: true })
  }
  try {
    await waitForAssignment([worker], options.partitions, 120_000)
  } catch (error) {
    await stop()
    throw error
  }
  const pid = worker.child.pid as number
  return {
    readyAt: Date.now(),
    cpuSeconds: async () => (await processUsage(pid)).cpuSeconds,
    peakRssMb: async () => (await processUsage(pid)).peakRssMb,
    problem: () => (stopping || worker.child.exitCode === null ? undefined : `the weir worker exited (${worker.child.exitCode}):\n${worker.logs().slice(-3000)}`),
    stop,
  }
}

/** The raw client loop of runRawClient, left running in the bench process until stopped. */
export async function startRawClient(options: { brokers: string[]; input: string; output: string; run: string; exactlyOnce: boolean }): Promise<RunningSystem> {
  const { brokers, input, output } = options
  const member = createGroupMember({ ...kafkaSecurity(), brokers, groupId: `bench-raw-${options.run}`, topics: [input] })
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers, maxWaitMs: 100 })
  const producers = new Map<number, KafkaProducer>()
  let stopped = false
  let failure: string | undefined
  const close = async () => {
    for (const producer of producers.values()) await producer.close().catch(() => {})
    await reader.close().catch(() => {})
    await member.close().catch(() => {})
  }
  let assigned: Awaited<ReturnType<typeof member.join>>
  try {
    assigned = await member.join()
  } catch (error) {
    await close()
    throw error
  }
  const positions = new Map(assigned.map((p) => [p.partition, 0n]))
  for (const p of assigned) producers.set(p.partition, createProducer({ ...kafkaSecurity(), brokers, transactionalId: `bench-raw-${options.run}-${p.partition}` }))
  const readyAt = Date.now()
  const loop = (async () => {
    while (!stopped) {
      const batches = await reader.fetch([...positions].map(([partition, offset]) => ({ topic: input, partition, offset })))
      // Stopping between batches: a transaction is never left open.
      await Promise.all(
        batches.map(async (batch) => {
          if (batch.records.length === 0) return
          const producer = producers.get(batch.partition) as KafkaProducer
          const outputs = batch.records.map((r) => ({ topic: output, key: r.key ?? null, value: r.value ?? null }))
          if (options.exactlyOnce) {
            const tx = await producer.beginTransaction()
            await tx.send(outputs)
            await tx.sendOffsets(member, [{ topic: input, partition: batch.partition, offset: batch.nextOffset }])
            await tx.commit()
          } else {
            await producer.send(outputs)
          }
          positions.set(batch.partition, batch.nextOffset)
        }),
      )
    }
  })().catch((error: unknown) => {
    failure = `the raw client failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
  })
  return {
    readyAt,
    // The bench process also takes the window's offset samples (the feeder has a process of its own): an upper
    // bound of the client's own CPU.
    cpuSeconds: async () => {
      const used = process.cpuUsage()
      return (used.user + used.system) / 1e6
    },
    peakRssMb: async () => process.memoryUsage().rss / 1024 / 1024,
    problem: () => failure,
    async stop() {
      stopped = true
      await loop
      await close()
    },
  }
}
