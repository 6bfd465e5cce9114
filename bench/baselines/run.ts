// Runs the Java baselines on their own, for trying them out and for quick numbers:
//   node bench/baselines/run.ts [--modes counting,command-service,delayed,ceiling] [--records 50000]
//                               [--partitions 1] [--payload 100] [--eos on|off] [--delay-ms 10000] [--json]
// Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts a broker like every bench command.
import { parseArgs } from 'node:util'

import { encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import { createAdmin, createProducer } from '../../kafka/index.ts'
import type { OutgoingRecord } from '../../kafka/index.ts'
import { schedulerRequestSerde } from '../../processors/scheduler.ts'
import { createProgress, provideInfrastructure } from '../../scripts/infra/index.ts'
import { measureBrokerCeiling } from './broker-ceiling.ts'
import { buildKafkaStreamsBaseline, runKafkaStreams } from './kafka-streams.ts'
import type { KafkaStreamsRunResult } from './kafka-streams.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'counting,command-service,delayed,ceiling' },
    records: { type: 'string', default: '50000' },
    partitions: { type: 'string', default: '1' },
    payload: { type: 'string', default: '100' },
    eos: { type: 'string', default: 'on' },
    'delay-ms': { type: 'string', default: '10000' },
    json: { type: 'boolean', default: false },
  },
})
const records = Number(values.records)
const partitions = Number(values.partitions)
const payload = 'x'.repeat(Number(values.payload))
const exactlyOnce = values.eos !== 'off'
const delayMs = Number(values['delay-ms'])
const progress = createProgress('baselines')

async function send(brokers: string[], all: (i: number) => OutgoingRecord[]): Promise<void> {
  const producer = createProducer({ ...kafkaSecurity(), brokers })
  try {
    for (let i = 0; i < records; i += 1000) {
      const batch: OutgoingRecord[] = []
      for (let j = i; j < Math.min(records, i + 1000); j++) batch.push(...all(j))
      await producer.send(batch)
    }
  } finally {
    await producer.close()
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN
}

async function main() {
  const infra = await provideInfrastructure({ redis: false, progress })
  const brokers = infra.kafka.brokers
  const admin = createAdmin({ ...kafkaSecurity(), brokers })
  const classpath = await buildKafkaStreamsBaseline(progress)
  const results: Record<string, unknown> = {}
  const run = `${Date.now()}`
  const summary = (r: KafkaStreamsRunResult) => ({
    recordsPerSecond: Math.round(records / r.runningSeconds),
    recordsPerSecondWithJvmStart: Math.round(records / r.seconds),
    ...r,
  })
  try {
    for (const mode of String(values.modes).split(',')) {
      const input = `baseline-${run}-${mode}.in`
      const output = `baseline-${run}-${mode}.out`
      await admin.createTopics([
        { name: input, partitions },
        { name: output, partitions },
      ])
      if (mode === 'ceiling') {
        results.ceiling = await measureBrokerCeiling({ brokers, topic: `baseline-${run}-ceiling`, partitions, records, recordSize: payload.length, progress })
      } else if (mode === 'counting') {
        progress.step(`counting: preloading ${records} records`)
        await send(brokers, (i) => [{ topic: input, key: `key-${i % 1000}`, value: JSON.stringify({ seq: i, payload }) }])
        results.counting = summary(await runKafkaStreams({ brokers, mode, input, output, applicationId: `baseline-${run}-counting`, exactlyOnce, expectedOutputs: records, classpath, progress }))
      } else if (mode === 'command-service') {
        const deadlines = `${input}.deadlines`
        await admin.createTopics([{ name: deadlines, partitions }])
        progress.step(`command-service: preloading ${records} commands and their deadline registrations`)
        await send(brokers, (i) => {
          const e = createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias: 'place', payload: { sku: `sku-${i % 1000}`, qty: 1, note: payload }, ttlMs: 600_000 })
          const bytes = encodeEnvelope(e)
          return [
            { topic: deadlines, key: `sku-${i % 1000}`, value: bytes },
            { topic: input, key: `sku-${i % 1000}`, value: bytes },
          ]
        })
        results['command-service'] = summary(
          await runKafkaStreams({ brokers, mode, input, output, applicationId: `baseline-${run}-cmd`, exactlyOnce, expectedOutputs: records, classpath, progress }),
        )
      } else if (mode === 'delayed') {
        // Every request is due within [start, start + delayMs): the backlog is pending when the JVM starts.
        const start = Date.now() + 15_000
        progress.step(`delayed: preloading ${records} schedule requests due over ${delayMs} ms`)
        await send(brokers, (i) => [
          {
            topic: input,
            key: `job-${i}`,
            value: schedulerRequestSerde.serialize({ op: 'schedule', id: `job-${i}`, deliverAt: start + Math.floor((i * delayMs) / records), topic: output, key: Buffer.from(`k-${i}`), value: Buffer.from(payload) }),
          },
        ])
        const lateness: number[] = []
        const r = await runKafkaStreams({
          brokers,
          mode,
          input,
          output,
          applicationId: `baseline-${run}-delayed`,
          exactlyOnce,
          expectedOutputs: records,
          classpath,
          progress,
          onOutput: (record, visibleAt) => lateness.push(visibleAt - Number(record.headers.get('weir.scheduled.at')?.toString())),
        })
        lateness.sort((a, b) => a - b)
        results.delayed = { ...r, latenessMs: { p50: percentile(lateness, 50), p99: percentile(lateness, 99), max: lateness.at(-1) }, startedLateBy: r.startupSeconds * 1000 - 15_000 }
      }
      const derived = [`${input}.deadlines`, `${input}.dlq`, `${output}.late`, `baseline-${run}-ceiling`]
      await admin.deleteTopics([input, output, ...derived]).catch(() => {})
    }
  } finally {
    await admin.close()
    await infra.stop()
  }
  return results
}

main().then(
  (results) => {
    process.stdout.write(`records ${records}, ${partitions} partition(s), payload ${payload.length} B, exactly-once ${exactlyOnce ? 'on' : 'off'}\n`)
    for (const [name, r] of Object.entries(results)) process.stdout.write(`${name}: ${JSON.stringify(r)}\n`)
    if (values.json) process.stdout.write(`${JSON.stringify(results)}\n`)
    process.exit(0)
  },
  (error: unknown) => {
    process.stderr.write(`baselines failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
