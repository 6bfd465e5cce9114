// Steady-state throughput windows: the harness feeds a system continuously, lets it warm up (not counted), then
// measures a fixed window. The window is bounded by two samples of the output topic's last stable offsets (ListOffsets
// at read_committed, every partition): a record counts when it became visible to a read_committed reader between
// the two samples. After the system has stopped, the records between the two offset sets are read at
// read_committed and counted, so transaction markers and aborted records are not counted. Nothing changes inside the
// systems: the same window works for weir, the raw client and Kafka Streams.
import { fork } from 'node:child_process'
import { join } from 'node:path'

import { createPartitionReader, createProducer } from '../kafka/index.ts'
import type { OutgoingRecord, PartitionReader, TopicPartitionOffset } from '../kafka/index.ts'
import type { Progress } from '../scripts/infra/index.ts'
import type { InputSpec } from './inputs.ts'
import { kafkaSecurity } from '../test/helpers/kafka.ts'

export interface Spread {
  min: number
  median: number
  max: number
}

/** min / median / max of a non-empty list (the median of an even count is the lower middle one, a measured value). */
export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new Error('spread of no values')
  const s = [...xs].sort((a, b) => a - b)
  return { min: s[0] as number, median: s[Math.floor((s.length - 1) / 2)] as number, max: s[s.length - 1] as number }
}

/** Where the output topic stood at one moment: per partition the last stable offset, and when the answer arrived. */
export interface OffsetSample {
  at: number
  offsets: Record<number, string>
}

/** One system's measured window in one run (the `steadyState` entries of bench:partition's JSON). */
export interface SteadyStateWindow {
  /** When the system was ready (weir: every partition assigned and restored; Kafka Streams: RUNNING; raw client: joined), epoch ms. */
  readyAt: number
  /** When the first output was seen visible (the offset samples, every 250 ms): the warm-up's clock starts here. */
  firstOutputAt: number
  /** Warm-up asked for: at least this long after the first output, and at least this many outputs visible. */
  warmupSeconds: number
  warmupRecords: number
  /** Outputs visible since ready (offset estimate, markers included) when the warm-up ended. */
  warmupOutputs: number
  /** The window: from the first offset sample to the second. */
  start: OffsetSample
  end: OffsetSample
  measuredSeconds: number
  /** Output records whose offsets lie between the two samples, read at read_committed after the run. */
  records: number
  recordsPerSecond: number
  /** CPU seconds the system used during the window (utime + stime from /proc; the raw client: the bench process). */
  cpuSeconds: number
  /** Input records the feeder produced during the window (the bench process's load on the machine while measuring). */
  fedDuringWindow: number
  /** The smallest input backlog seen during the window, in outputs (estimate). 0 or less: the system may have idled. */
  minBacklog: number
  /** True when the backlog ran out during the window: the figure is a lower bound of the system's capacity. */
  starved: boolean
}

/**
 * How many input units the feeder should add now. During the warm-up it builds a backlog that lasts the rest of the
 * warm-up, the whole window and a margin at the rate seen so far (so the bench process is idle while measuring); in
 * the window it only tops up when the backlog would last less than `lowWaterSeconds`.
 */
export function feedAmount(state: { produced: number; visible: number; ratePerSecond: number; secondsLeft: number; measuring: boolean; lowWaterSeconds: number; maxBacklog: number }): number {
  const backlog = state.produced - state.visible
  const rate = Math.max(1000, state.ratePerSecond)
  if (state.measuring) {
    if (backlog >= rate * state.lowWaterSeconds) return 0
    return Math.max(0, Math.min(state.maxBacklog, Math.ceil(rate * state.lowWaterSeconds * 2)) - backlog)
  }
  const target = Math.min(state.maxBacklog, Math.ceil(rate * (state.secondsLeft + state.lowWaterSeconds) * 1.25))
  return Math.max(0, target - backlog)
}

/** `promise`, or a rejection with `message` after `ms` (the timer is cleared either way, so it holds no process open). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message())), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

/** Outputs per second between two times in ms (never divides by zero). */
export function windowRate(records: number, fromMs: number, toMs: number): number {
  return Math.round(records / Math.max(0.001, (toMs - fromMs) / 1000))
}

/** Sum of the offset differences of two samples (transaction markers included: an estimate of the outputs). */
export function offsetDelta(from: Record<number, string>, to: Record<number, string>): number {
  let sum = 0
  for (const [p, offset] of Object.entries(to)) sum += Number(BigInt(offset) - BigInt(from[Number(p)] ?? '0'))
  return sum
}

export async function sampleOffsets(reader: PartitionReader, topic: string, partitions: number): Promise<OffsetSample> {
  const listed = await reader.offsets(Array.from({ length: partitions }, (_, partition) => ({ topic, partition })), 'latest')
  const at = Date.now()
  return { at, offsets: Object.fromEntries(listed.map((o) => [o.partition, o.offset.toString()])) }
}

/** Reads `topic` at read_committed from `from` up to (not including) `to` per partition and counts the data records. */
export async function countBetween(brokers: string[], topic: string, from: Record<number, string>, to: Record<number, string>, timeoutMs = 10 * 60_000): Promise<number> {
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers, isolation: 'read_committed', maxWaitMs: 100 })
  try {
    const ends = new Map(Object.entries(to).map(([p, o]) => [Number(p), BigInt(o)]))
    const positions = new Map<number, bigint>()
    for (const [p, end] of ends) {
      const start = BigInt(from[p] ?? '0')
      if (start < end) positions.set(p, start)
    }
    const started = Date.now()
    let count = 0
    while (positions.size > 0) {
      if (Date.now() - started > timeoutMs) throw new Error(`counting ${topic} did not finish within ${timeoutMs} ms`)
      const batches = await reader.fetch([...positions].map(([partition, offset]): TopicPartitionOffset => ({ topic, partition, offset })))
      for (const batch of batches) {
        const end = ends.get(batch.partition) as bigint
        for (const record of batch.records) if (record.offset < end) count++
        if (batch.nextOffset >= end) positions.delete(batch.partition)
        else positions.set(batch.partition, batch.nextOffset)
      }
    }
    return count
  } finally {
    await reader.close()
  }
}

/** Produces input for a system: `make(i)` gives the records of input unit i (one expected output each). */
export interface Feeder {
  readonly produced: number
  /** Produces units [produced, produced + n), in sends of at most 5,000 records. */
  feed(n: number): Promise<void>
  close(): Promise<void>
}

export function createFeeder(brokers: string[], make: (i: number) => OutgoingRecord[], clientId = 'bench-feeder'): Feeder {
  const producer = createProducer({ ...kafkaSecurity(), brokers, clientId })
  let produced = 0
  return {
    get produced() {
      return produced
    },
    async feed(n) {
      const end = produced + n
      while (produced < end) {
        const batch: OutgoingRecord[] = []
        let units = 0
        while (produced + units < end && batch.length < 5000) batch.push(...make(produced + units++))
        await producer.send(batch)
        produced += units
      }
    },
    close: () => producer.close(),
  }
}

export interface WindowOptions {
  brokers: string[]
  /** The topic whose outputs are counted, and its partition count. */
  output: string
  partitions: number
  feeder: Feeder
  readyAt: number
  warmupSeconds: number
  warmupRecords: number
  measuredSeconds: number
  /** CPU seconds of the system so far (a running total). */
  cpu: () => Promise<number>
  /** A description of what went wrong when the system died, else undefined. */
  alive: () => string | undefined
  name: string
  progress: Progress
  /** Backlog the feeder keeps in the window, in seconds of the rate seen (default 5). */
  lowWaterSeconds?: number
  /** Largest backlog the feeder builds, in units (default 3,000,000). */
  maxBacklog?: number
  /** Give up when no output is visible this long after ready (default 180 s). */
  firstOutputTimeoutMs?: number
}

/**
 * Runs the warm-up and the measured window of one system that is already started and ready. Returns the window
 * without its record count (`records` is the offset estimate until `countWindow` has read the range; call that
 * after the system stopped, so reading the outputs does not compete with it).
 */
export async function measureWindow(options: WindowOptions): Promise<SteadyStateWindow> {
  const { feeder, progress } = options
  const lowWaterSeconds = options.lowWaterSeconds ?? 5
  const maxBacklog = options.maxBacklog ?? 3_000_000
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers: options.brokers, isolation: 'read_committed' })
  try {
    const initial = await sampleOffsets(reader, options.output, options.partitions)
    const visibleSince = (s: OffsetSample) => offsetDelta(initial.offsets, s.offsets)
    // The rate is taken over the last 2 s or more: the last stable offset moves in steps of one transaction.
    const history: Array<{ at: number; visible: number }> = [{ at: initial.at, visible: 0 }]
    let last = initial
    let rate = 0
    const tick = async (measuring: boolean, secondsLeft: number): Promise<number> => {
      const problem = options.alive()
      if (problem !== undefined) throw new Error(problem)
      last = await sampleOffsets(reader, options.output, options.partitions)
      const visible = visibleSince(last)
      history.push({ at: last.at, visible })
      while (history.length > 2 && last.at - (history[1] as { at: number }).at >= 2000) history.shift()
      const first = history[0] as { at: number; visible: number }
      if (last.at - first.at >= 500) rate = ((visible - first.visible) * 1000) / (last.at - first.at)
      const n = feedAmount({ produced: feeder.produced, visible, ratePerSecond: rate, secondsLeft, measuring, lowWaterSeconds, maxBacklog })
      // Bounded per tick, so a death or the window's end is noticed while a backlog is being built.
      if (n > 0) await feeder.feed(Math.min(n, measuring ? Math.max(1000, Math.ceil(rate)) : 100_000))
      return feeder.produced - visible
    }
    // The warm-up's clock starts at the first output, not at ready: a system whose first transactions take long
    // (topic creation, producer fencing on a loaded broker) still gets its full warm-up of processing.
    let firstOutputAt = 0
    let reported = Date.now()
    for (;;) {
      const warmupEndsAt = (firstOutputAt || Date.now()) + options.warmupSeconds * 1000
      await tick(false, Math.max(0, (warmupEndsAt - Date.now()) / 1000) + options.measuredSeconds)
      if (firstOutputAt === 0 && visibleSince(last) > 0) firstOutputAt = last.at
      if (firstOutputAt === 0 && Date.now() - options.readyAt > (options.firstOutputTimeoutMs ?? 180_000)) {
        throw new Error(`${options.name}: no output on ${options.output} within ${(options.firstOutputTimeoutMs ?? 180_000) / 1000} s of ready`)
      }
      if (firstOutputAt > 0 && Date.now() >= firstOutputAt + options.warmupSeconds * 1000 && visibleSince(last) >= options.warmupRecords) break
      if (Date.now() - reported > 5000) {
        reported = Date.now()
        progress.step(`  ${options.name}: warming up, ${visibleSince(last).toLocaleString('en')} outputs, ${Math.round(rate).toLocaleString('en')}/s`)
      }
      await new Promise((r) => setTimeout(r, 250))
    }
    const start = await sampleOffsets(reader, options.output, options.partitions)
    const cpuStart = await options.cpu()
    const fedBefore = feeder.produced
    const warmupOutputs = visibleSince(start)
    const endsAt = start.at + options.measuredSeconds * 1000
    let minBacklog = Infinity
    while (Date.now() < endsAt) {
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, endsAt - Date.now()))))
      if (Date.now() >= endsAt) break
      minBacklog = Math.min(minBacklog, await tick(true, (endsAt - Date.now()) / 1000))
    }
    const end = await sampleOffsets(reader, options.output, options.partitions)
    const cpuEnd = await options.cpu()
    const problem = options.alive()
    if (problem !== undefined) throw new Error(problem)
    const estimate = offsetDelta(start.offsets, end.offsets)
    const measuredSeconds = (end.at - start.at) / 1000
    if (minBacklog === Infinity) minBacklog = feeder.produced - visibleSince(end)
    return {
      readyAt: options.readyAt,
      firstOutputAt,
      warmupSeconds: options.warmupSeconds,
      warmupRecords: options.warmupRecords,
      warmupOutputs,
      start,
      end,
      measuredSeconds,
      records: estimate,
      recordsPerSecond: windowRate(estimate, start.at, end.at),
      cpuSeconds: Number((cpuEnd - cpuStart).toFixed(2)),
      fedDuringWindow: feeder.produced - fedBefore,
      minBacklog: Math.round(minBacklog),
      starved: minBacklog <= 0,
    }
  } finally {
    await reader.close()
  }
}

/** Replaces the window's offset estimate with the exact count of committed output records between its two samples. */
export async function countWindow(brokers: string[], output: string, window: SteadyStateWindow): Promise<SteadyStateWindow> {
  const records = await countBetween(brokers, output, window.start.offsets, window.end.offsets)
  return { ...window, records, recordsPerSecond: windowRate(records, window.start.at, window.end.at) }
}

/** Messages to and from bench/feeder-process.ts. */
export type FeederRequest = { readonly type: 'start'; readonly brokers: string[]; readonly spec: InputSpec; readonly clientId: string } | { readonly type: 'feed'; readonly n: number }
export type FeederReply = { readonly type: 'fed'; readonly produced: number } | { readonly type: 'failed'; readonly message: string }

/**
 * A Feeder in a child process (bench/feeder-process.ts) making the records of `spec`: the bench process's thread
 * stays free for what it measures (the raw client runs there).
 */
export async function createFeederProcess(brokers: string[], spec: InputSpec, clientId = 'bench-feeder'): Promise<Feeder> {
  const child = fork(join(import.meta.dirname, 'feeder-process.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let produced = 0
  const request = (message: FeederRequest) =>
    new Promise<void>((resolve, reject) => {
      const onMessage = (reply: FeederReply) => {
        cleanup()
        if (reply.type === 'failed') return reject(new Error(`the feeder failed: ${reply.message}`))
        produced = reply.produced
        resolve()
      }
      const onExit = (code: number | null) => {
        cleanup()
        reject(new Error(`the feeder exited (${code})`))
      }
      const cleanup = () => {
        child.removeListener('message', onMessage)
        child.removeListener('exit', onExit)
      }
      child.once('message', onMessage)
      child.once('exit', onExit)
      child.send(message)
    })
  await request({ type: 'start', brokers, spec, clientId })
  return {
    get produced() {
      return produced
    },
    feed: (n) => request({ type: 'feed', n }),
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.disconnect()
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}
