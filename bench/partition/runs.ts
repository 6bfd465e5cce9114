// The topics and the input of one bench:partition run, per topology: `counting` (a stateful pass-through; `io`
// is the same behind simulated I/O) or
// `command-service` (the orders example: commands plus their deadline registrations, as the gateway writes them).
import { resolve } from 'node:path'

import { createOrdersTopics } from '../../examples/orders/create-topics.ts'
import { ordersService } from '../../examples/orders/service.ts'
import { createProducer } from '../../kafka/index.ts'
import type { KafkaAdmin, OutgoingRecord } from '../../kafka/index.ts'
import type { Progress } from '../../scripts/infra/index.ts'
import type { InputSpec } from '../inputs.ts'
import type { System } from './report.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

export interface RunSettings {
  readonly topologyName: string
  readonly keyCount: number
  readonly payloadBytes: number
  /** The io topology: the handler's wait per record, and records in flight per task. */
  readonly ioMs?: number
  readonly maxInFlight?: number
}

export async function send(brokers: string[], all: OutgoingRecord[], what: string, p: Progress): Promise<void> {
  const producer = createProducer({ ...kafkaSecurity(), brokers, clientId: 'bench-preload' })
  try {
    for (let i = 0; i < all.length; i += 5000) {
      await producer.send(all.slice(i, i + 5000))
      if (i > 0 && i % 100_000 === 0) p.step(`  preloading ${what}: ${i.toLocaleString('en')}/${all.length.toLocaleString('en')}`)
    }
  } finally {
    await producer.close()
  }
}

export interface PreparedRun {
  input: string
  weirOutput: string
  weirModule: string
  weirEnv: Record<string, string>
  weirApp: string
  ksExtra: string[]
  /** How to make its input: unit i is a record, or a command and its deadline registration; one output each. */
  spec: InputSpec
}

/** The topics of one run (what weir, the raw client and Kafka Streams read and write), and how to make its input. */
export async function prepareRun(brokers: string[], admin: KafkaAdmin, run: string, partitions: number, settings: RunSettings): Promise<PreparedRun> {
  const { topologyName, keyCount, payloadBytes } = settings
  if (topologyName === 'counting' || topologyName === 'io') {
    const input = `bench-${run}.input`
    const weirOutput = `bench-${run}.weir-out`
    await admin.createTopics([
      { name: input, partitions },
      { name: weirOutput, partitions },
      { name: `bench-${run}.raw-out`, partitions },
      { name: `bench-${run}.ks-out`, partitions },
    ])
    const weirApp = `bench-weir-${run}`
    return {
      input,
      weirOutput,
      weirApp,
      weirModule: resolve(import.meta.dirname, topologyName === 'io' ? '../topologies/io-handler.ts' : '../topologies/counting.ts'),
      weirEnv: {
        WEIR_BENCH_INPUT: input,
        WEIR_BENCH_OUTPUT: weirOutput,
        ...(topologyName === 'io' ? { WEIR_BENCH_IO_MS: String(settings.ioMs ?? 10), WEIR_MAX_IN_FLIGHT: String(settings.maxInFlight ?? 1) } : {}),
      },
      ksExtra: [],
      spec: { topology: 'counting', input, keys: keyCount, payloadBytes },
    }
  }
  // The orders example service: commands plus their deadline registrations (what the gateway writes).
  const prefix = `bench-${run}`
  await createOrdersTopics({ brokers, prefix, partitions })
  const topics = ordersService({ prefix }).topics
  await admin.createTopics([
    { name: `bench-${run}.raw-out`, partitions },
    { name: `bench-${run}.ks-out`, partitions },
  ])
  return {
    input: topics.commands,
    weirOutput: topics.outcomes,
    weirApp: `${prefix}-service`,
    weirModule: resolve(import.meta.dirname, '../../examples/orders/topology.ts'),
    weirEnv: { WEIR_ORDERS_PREFIX: prefix },
    ksExtra: ['--late', `${prefix}.ks-late`, '--dead-letters', `${prefix}.ks-dlq`, '--events', `${prefix}.ks-events`],
    spec: { topology: 'command-service', commands: topics.commands, deadlines: topics.deadlines, keys: keyCount },
  }
}

export function outputOf(system: System, run: string, prepared: PreparedRun): string {
  return system === 'weir' ? prepared.weirOutput : system === 'rawClient' ? `bench-${run}.raw-out` : `bench-${run}.ks-out`
}

export async function deleteRunTopics(admin: KafkaAdmin, run: string): Promise<void> {
  const created = await admin.listTopics().catch(() => [] as string[])
  await admin.deleteTopics(created.filter((t) => t.startsWith(`bench-${run}`))).catch(() => {})
}
