// The floor of bench:gateway's command -> result latency: an exactly-once request/reply through the same broker at
// the same offered rate, with nothing of weir in it. A client in the bench process produces commands open loop
// (command i is due at startAt + i / rate; every command due while a produce is in flight goes in the next one, as
// the gateway's group commit does), the smallest consume-transform-produce loop of Kafka's Java client
// (RequestReplyFloor in the Kafka Streams baseline jar: read_committed, one transaction per poll with the offsets)
// answers each with a result keyed by its request id, and a read_committed reader in the bench process notes when
// each result became visible. Latency = result visible to the client - command handed to the client's producer,
// measured like the weir run (client-process.ts): from the moment the command is due and sent to the moment its
// result arrives, for the commands sent after the warm-up.
import { spawn } from 'node:child_process'

import { encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import { createAdmin, createPartitionReader, createProducer } from '../../kafka/index.ts'
import type { OutgoingRecord, TopicPartitionOffset } from '../../kafka/index.ts'
import { stopProcess } from '../../scripts/infra/index.ts'
import type { Progress } from '../../scripts/infra/index.ts'
import { withTimeout } from '../steady-state.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

export interface FloorOptions {
  brokers: readonly string[]
  /** Classpath of the Kafka Streams baseline jar (buildKafkaStreamsBaseline). */
  classpath: string
  /** Topic name prefix; `<prefix>.floor-commands` and `<prefix>.floor-results` are created and deleted. */
  prefix: string
  partitions: number
  /** Commands per second offered. */
  rate: number
  warmupSeconds: number
  seconds: number
  /** The reader's fetch wait, as the gateway's (default 200 ms). */
  fetchMaxWaitMs?: number
  /** Settings over the Java loop's producer and consumer defaults (`key=value,...`; bench/baselines/README.md). */
  javaProducerConfig?: string
  javaConsumerConfig?: string
  progress?: Progress
}

export interface FloorResult {
  /** Commands sent after the warm-up, and how many of them got no result within 30 s of the last send. */
  commands: number
  missing: number
  resultsPerSecond: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

/** The latency figures of [sentAt, receivedAt] pairs (receivedAt < 0: no result) sent at or after `from`. */
export function latencyFigures(samples: ReadonlyArray<readonly [number, number]>, from: number): FloorResult {
  const measured = samples.filter(([sentAt]) => sentAt >= from)
  const ok = measured.filter(([, receivedAt]) => receivedAt >= 0)
  const latencies = ok.map(([sentAt, receivedAt]) => receivedAt - sentAt).sort((a, b) => a - b)
  const last = ok.reduce((max, [, receivedAt]) => Math.max(max, receivedAt), from)
  const round = (n: number) => Number(n.toFixed(2))
  return {
    commands: measured.length,
    missing: measured.length - ok.length,
    resultsPerSecond: last > from ? Math.round(ok.length / ((last - from) / 1000)) : 0,
    p50Ms: round(percentile(latencies, 50)),
    p90Ms: round(percentile(latencies, 90)),
    p99Ms: round(percentile(latencies, 99)),
    maxMs: round(latencies.at(-1) ?? Number.NaN),
  }
}

const epochNow = () => performance.timeOrigin + performance.now()

export async function runFloor(options: FloorOptions): Promise<FloorResult> {
  const progress = options.progress ?? { step: () => {}, done: () => {} }
  const brokers = [...options.brokers]
  const commands = `${options.prefix}.floor-commands`
  const results = `${options.prefix}.floor-results`
  const admin = createAdmin({ ...kafkaSecurity(), brokers, clientId: 'bench-floor' })
  await admin.createTopics([
    { name: commands, partitions: options.partitions },
    { name: results, partitions: options.partitions },
  ])
  const java = spawn(
    'java',
    [
      '-Xms256m', '-Xmx1g', '-XX:+UseG1GC', '-cp', options.classpath, 'dev.weir.bench.RequestReplyFloor',
      '--bootstrap-servers', brokers.join(','),
      '--input', commands, '--output', results,
      '--group', `${options.prefix}-floor`, '--transactional-id', `${options.prefix}-floor`,
      ...(options.javaProducerConfig ? ['--producer-config', options.javaProducerConfig] : []),
      ...(options.javaConsumerConfig ? ['--consumer-config', options.javaConsumerConfig] : []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const killOnExit = () => java.kill('SIGKILL')
  process.once('exit', killOnExit)
  let output = ''
  let failure: string | undefined
  let stopping = false
  const running = new Promise<void>((resolve, reject) => {
    java.stdout.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000)
      if (/^weir-floor: RUNNING/m.test(output)) resolve()
      const failed = /^weir-floor: FAILED (.*)$/m.exec(output)
      if (failed !== null) {
        failure = failed[1]
        reject(new Error(`the floor loop failed: ${failure}`))
      }
    })
    java.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000)))
    java.once('exit', (code) => {
      if (!stopping) failure ??= `exited (${code})`
      reject(new Error(`the floor loop exited (${code}) before it was running:\n${output}`))
    })
  })
  running.catch(() => {})
  const producer = createProducer({ ...kafkaSecurity(), brokers, clientId: 'bench-floor-client' })
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers, clientId: 'bench-floor-results', isolation: 'read_committed', maxWaitMs: options.fetchMaxWaitMs ?? 200 })
  let reading = true
  try {
    await withTimeout(running, 120_000, () => `the floor loop was not running within 120 s:\n${output}`)
    const sentAt = new Map<string, number>()
    const receivedAt = new Map<string, number>()
    let positions: TopicPartitionOffset[] = await reader.offsets(
      Array.from({ length: options.partitions }, (_, partition) => ({ topic: results, partition })),
      'latest',
    )
    let readError: unknown
    const readLoop = (async () => {
      while (reading) {
        const batches = await reader.fetch(positions)
        const now = epochNow()
        for (const batch of batches) {
          for (const record of batch.records) {
            const id = record.key?.toString()
            if (id !== undefined && !receivedAt.has(id)) receivedAt.set(id, now)
          }
          positions = positions.map((p) => (p.partition === batch.partition ? { ...p, offset: batch.nextOffset } : p))
        }
      }
    })().catch((error: unknown) => {
      readError = error
    })

    const total = Math.round(options.rate * (options.warmupSeconds + options.seconds))
    progress.step(`floor: ${options.rate} commands/s for ${options.warmupSeconds} s warm-up + ${options.seconds} s through Kafka's Java client (exactly-once consume-transform-produce)`)
    const startAt = epochNow() + 300
    let due = 0
    let queue: OutgoingRecord[] = []
    let inFlight: Promise<void> | undefined
    let sendError: unknown
    const flush = () => {
      if (inFlight !== undefined || queue.length === 0) return
      const batch = queue
      queue = []
      inFlight = producer.send(batch).then(
        () => {
          inFlight = undefined
          flush()
        },
        (error: unknown) => {
          sendError = error
          inFlight = undefined
        },
      )
    }
    // The command bytes: an orders/orders/place envelope as the gateway writes it.
    const value = (requestId: string) =>
      encodeEnvelope(createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias: 'place', payload: { orderId: requestId, sku: 'bench', qty: 1 }, ttlMs: 30_000, requestId }))
    let reported = epochNow()
    await new Promise<void>((resolve, reject) => {
      const tick = () => {
        if (sendError !== undefined || readError !== undefined) return reject((sendError ?? readError) as Error)
        if (failure !== undefined) return reject(new Error(`the floor loop failed: ${failure}\n${output}`))
        const elapsed = epochNow() - startAt
        while (due < total && (due * 1000) / options.rate <= elapsed) {
          const requestId = `floor-${due}`
          sentAt.set(requestId, epochNow())
          queue.push({ topic: commands, key: requestId, value: value(requestId) })
          due++
        }
        flush()
        if (epochNow() - reported > 5000) {
          reported = epochNow()
          progress.step(`  floor: sent ${due}, results ${receivedAt.size}`)
        }
        if (due >= total) return resolve()
        setTimeout(tick, Math.max(0, (due * 1000) / options.rate - (epochNow() - startAt)))
      }
      setTimeout(tick, Math.max(0, startAt - epochNow()))
    })
    const waitUntil = epochNow() + 30_000
    while (receivedAt.size < sentAt.size && epochNow() < waitUntil && failure === undefined) await new Promise((r) => setTimeout(r, 50))
    reading = false
    await readLoop
    while (inFlight !== undefined) await inFlight
    const samples = [...sentAt].map(([id, at]) => [at, receivedAt.get(id) ?? -1] as const)
    return latencyFigures(samples, startAt + options.warmupSeconds * 1000)
  } finally {
    reading = false
    stopping = true
    await stopProcess(java, 15_000)
    process.removeListener('exit', killOnExit)
    await producer.close().catch(() => {})
    await reader.close().catch(() => {})
    await admin.deleteTopics([commands, results]).catch(() => {})
    await admin.close().catch(() => {})
  }
}
