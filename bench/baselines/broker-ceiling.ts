// The broker's ceiling on this machine: Kafka's own perf tools (kafka-tools, from the cached Kafka jars),
// ProducerPerformance (acks=all, unthrottled) then ConsumerPerformance reading the same records back.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { createAdmin } from '../../kafka/index.ts'
import { kafkaLibs } from '../../scripts/infra/kafka.ts'
import type { Progress } from '../../scripts/infra/index.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

const run = promisify(execFile)

export interface ProducerPerformanceResult {
  records: number
  recordsPerSecond: number
  mbPerSecond: number
  avgLatencyMs: number
  maxLatencyMs: number
  p50LatencyMs: number
  p99LatencyMs: number
}

export interface ConsumerPerformanceResult {
  records: number
  recordsPerSecond: number
  mbPerSecond: number
  /** The same figures over fetch time only (group join and rebalance excluded). */
  fetchRecordsPerSecond: number
  fetchMbPerSecond: number
}

export interface BrokerCeilingOptions {
  brokers: string[]
  /** Created (with `partitions`) when missing; should be a fresh topic, the consumer reads it from the start. */
  topic: string
  partitions?: number
  records: number
  recordSize: number
  /** Folder with Kafka's jars (default: kafkaLibs(), fetched by Maven once and cached). */
  libs?: string
  /** Extra producer properties (default only bootstrap.servers and acks=all). */
  producerProps?: Readonly<Record<string, string>>
  progress?: Progress
}

export interface BrokerCeilingResult {
  producer: ProducerPerformanceResult
  consumer: ConsumerPerformanceResult
}

const JAVA_OPTIONS = ['-Xms256m', '-Xmx1g', '-XX:+UseG1GC']

async function java(libs: string, main: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('java', [...JAVA_OPTIONS, '-cp', join(libs, '*'), main, ...args], { timeout: 15 * 60_000, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string }
    throw new Error(`${main} failed: ${`${e.stdout ?? ''}${e.stderr ?? ''}`.slice(-3000) || String(error)}`, { cause: error })
  }
}

/**
 * Parses ProducerPerformance's summary, its last line:
 * `50000 records sent, 98231.8 records/sec (9.37 MB/sec), 120.57 ms avg latency, 301.00 ms max latency, 115 ms 50th, 280 ms 95th, 295 ms 99th, 300 ms 99.9th.`
 */
export function parseProducerPerformance(stdout: string): ProducerPerformanceResult {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => / records sent, .* records\/sec .*50th/.test(l))
  const m =
    line === undefined
      ? null
      : /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, \d+ ms 95th, (\d+) ms 99th/.exec(line)
  if (m === null) throw new Error(`unexpected ProducerPerformance output:\n${stdout.slice(-1000)}`)
  return {
    records: Number(m[1]),
    recordsPerSecond: Number(m[2]),
    mbPerSecond: Number(m[3]),
    avgLatencyMs: Number(m[4]),
    maxLatencyMs: Number(m[5]),
    p50LatencyMs: Number(m[6]),
    p99LatencyMs: Number(m[7]),
  }
}

/**
 * Parses ConsumerPerformance's CSV summary (a header line, then one line of values):
 * `start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec`
 */
export function parseConsumerPerformance(stdout: string): ConsumerPerformanceResult {
  const lines = stdout.trim().split('\n')
  const headerIndex = lines.findIndex((l) => l.includes('nMsg.sec'))
  const header = lines[headerIndex]?.split(',').map((s) => s.trim())
  const values = lines[headerIndex + 1]?.split(',').map((s) => s.trim())
  if (header === undefined || values === undefined || values.length !== header.length) throw new Error(`unexpected ConsumerPerformance output:\n${stdout.slice(-1000)}`)
  const get = (name: string) => {
    const value = Number(values[header.indexOf(name)])
    if (!Number.isFinite(value)) throw new Error(`ConsumerPerformance output has no number for ${name}:\n${stdout.slice(-1000)}`)
    return value
  }
  return {
    records: get('data.consumed.in.nMsg'),
    recordsPerSecond: get('nMsg.sec'),
    mbPerSecond: get('MB.sec'),
    fetchRecordsPerSecond: get('fetch.nMsg.sec'),
    fetchMbPerSecond: get('fetch.MB.sec'),
  }
}

export async function runProducerPerformance(options: BrokerCeilingOptions & { libs: string }): Promise<ProducerPerformanceResult> {
  const props = { 'bootstrap.servers': options.brokers.join(','), acks: 'all', ...options.producerProps }
  const stdout = await java(options.libs, 'org.apache.kafka.tools.ProducerPerformance', [
    '--topic',
    options.topic,
    '--num-records',
    String(options.records),
    '--record-size',
    String(options.recordSize),
    '--throughput',
    '-1',
    '--producer-props',
    ...Object.entries(props).map(([k, v]) => `${k}=${v}`),
  ])
  return parseProducerPerformance(stdout)
}

export async function runConsumerPerformance(options: BrokerCeilingOptions & { libs: string }): Promise<ConsumerPerformanceResult> {
  const stdout = await java(options.libs, 'org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server',
    options.brokers.join(','),
    '--topic',
    options.topic,
    '--num-records',
    String(options.records),
    '--group',
    `weir-bench-ceiling-${process.pid}-${Date.now()}`,
    '--timeout',
    '60000',
  ])
  return parseConsumerPerformance(stdout)
}

/** Produces `records` records of `recordSize` bytes to `topic` as fast as the broker takes them, then reads them back. */
export async function measureBrokerCeiling(options: BrokerCeilingOptions): Promise<BrokerCeilingResult> {
  const progress = options.progress ?? { step: () => {}, done: () => {} }
  const libs = options.libs ?? (await kafkaLibs(progress))
  const admin = createAdmin({ ...kafkaSecurity(), brokers: options.brokers })
  try {
    await admin.createTopics([{ name: options.topic, partitions: options.partitions ?? 1 }])
  } finally {
    await admin.close()
  }
  progress.step(`  broker ceiling: ProducerPerformance ${options.records} records of ${options.recordSize} B, acks=all`)
  const producer = await runProducerPerformance({ ...options, libs })
  progress.step(`  broker ceiling: ConsumerPerformance ${options.records} records`)
  const consumer = await runConsumerPerformance({ ...options, libs })
  return { producer, consumer }
}
