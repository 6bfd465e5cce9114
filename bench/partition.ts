// `npm run bench:partition [-- --json] [--records N] [--partitions 1,4] [--runs 3] [--payload 100] [--eos on|off]`
//
// Partition throughput of a stateful weir topology (a per-key counter in RocksDB, one output per input, exactly
// once) against a baseline measured in the same run, on the same broker, with the same records:
//   rawClient: the same Kafka adapter with no runtime and no state: fetch -> produce -> one transaction per fetch
//              batch (what the runtime costs on top of the client).
// Each scenario preloads the input topic, then times from start until every output is committed.
// Reports records/s per partition and in total, CPU seconds per million records and peak RSS; median of the runs.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { createAdmin, createGroupMember, createPartitionReader, createProducer } from '../kafka/index.ts'
import type { KafkaAdmin, KafkaProducer, OutgoingRecord } from '../kafka/index.ts'
import { InfraUnavailable, createProgress, provideInfrastructure } from '../scripts/infra/index.ts'
import { openStore } from '../state/open-store.ts'
import { defineTopology } from '../topology/define.ts'
import type { ProcessorContext } from '../topology/processor.ts'
import type { StreamRecord } from '../topology/record.ts'
import { createStreamRuntime } from '../topology/runtime/stream-runtime.ts'

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    records: { type: 'string', default: '50000' },
    partitions: { type: 'string', default: '1,4' },
    runs: { type: 'string', default: '3' },
    payload: { type: 'string', default: '100' },
    eos: { type: 'string', default: 'on' },
    keys: { type: 'string', default: '1000' },
    // For profiling one side: `node --cpu-prof bench/partition.ts --only weir`.
    only: { type: 'string' },
  },
})
const records = Number(values.records)
const runs = Number(values.runs)
const payloadBytes = Number(values.payload)
const keyCount = Number(values.keys)
const partitionCounts = String(values.partitions).split(',').map(Number)
const exactlyOnce = values.eos !== 'off'
const progress = createProgress('bench')

interface Sample {
  seconds: number
  cpuSeconds: number
  rssMb: number
}

interface ScenarioResult {
  recordsPerSecond: number
  perPartitionRecordsPerSecond: number
  cpuSecondsPerMillion: number
  peakRssMb: number
  runs: number[]
}

async function preload(brokers: string[], topic: string): Promise<void> {
  const producer = createProducer({ brokers })
  const payload = 'x'.repeat(payloadBytes)
  try {
    for (let i = 0; i < records; i += 2000) {
      const batch: OutgoingRecord[] = []
      for (let j = i; j < Math.min(records, i + 2000); j++) batch.push({ topic, key: `key-${j % keyCount}`, value: JSON.stringify({ seq: j, payload }) })
      await producer.send(batch)
    }
  } finally {
    await producer.close()
  }
}

function measure<T>(fn: () => Promise<T>): Promise<Sample> {
  const cpu = process.cpuUsage()
  const started = performance.now()
  let peak = process.memoryUsage().rss
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 100)
  return fn().then(() => {
    clearInterval(sampler)
    const used = process.cpuUsage(cpu)
    return { seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6, rssMb: peak / 1024 / 1024 }
  })
}

function counting(input: string, output: string) {
  return defineTopology({
    sources: { input: { topic: input, keySerde: 'string', valueSerde: 'buffer' } },
    stores: { counts: { keySerde: 'string', valueSerde: 'json' } },
    processors: {
      count: {
        from: ['input'],
        stores: ['counts'],
        use: () => {
          let context: ProcessorContext
          return {
            init(c) {
              context = c
            },
            async process(record: StreamRecord<string, Buffer>) {
              const store = context.store<string, number>('counts')
              const next = ((await store.get(record.key)) ?? 0) + 1
              await store.put(record.key, next)
              await context.forward(record)
            },
          }
        },
      },
    },
    sinks: { out: { from: ['count'], topic: output, keySerde: 'string', valueSerde: 'buffer' } },
  })
}

async function runWeir(brokers: string[], admin: KafkaAdmin, input: string, output: string, run: string): Promise<Sample> {
  const stateDir = await mkdtemp(join(tmpdir(), 'weir-bench-'))
  const runtime = createStreamRuntime({
    applicationId: `bench-weir-${run}`,
    topology: counting(input, output),
    brokers,
    stateDir,
    openStore,
    createTopics: true,
    ...(exactlyOnce ? {} : { commitIntervalMs: 1000 }),
  })
  try {
    return await measure(async () => {
      await runtime.start()
      // Done when the group's committed offsets (stable: no open transaction) cover every input record: then
      // every output of the run is committed too. Counting processed records would count re-processing.
      for (;;) {
        const committed = await admin.committedOffsets(`bench-weir-${run}`, input)
        if (committed.reduce((sum, p) => sum + (p.offset > 0n ? Number(p.offset) : 0), 0) >= records) return
        await new Promise((r) => setTimeout(r, 20))
      }
    })
  } finally {
    await runtime.stop()
    await rm(stateDir, { recursive: true, force: true })
  }
}

async function runRawClient(brokers: string[], input: string, output: string, partitions: number, run: string): Promise<Sample> {
  const member = createGroupMember({ brokers, groupId: `bench-raw-${run}`, topics: [input] })
  const reader = createPartitionReader({ brokers, maxWaitMs: 100 })
  const producers = new Map<number, KafkaProducer>()
  try {
    return await measure(async () => {
      const assigned = await member.join()
      const positions = new Map(assigned.map((p) => [p.partition, 0n]))
      for (const p of assigned) producers.set(p.partition, createProducer({ brokers, transactionalId: `bench-raw-${run}-${p.partition}` }))
      let done = 0
      while (done < records) {
        const batches = await reader.fetch([...positions].map(([partition, offset]) => ({ topic: input, partition, offset })))
        await Promise.all(
          batches.map(async (batch) => {
            const producer = producers.get(batch.partition) as KafkaProducer
            const outputs = batch.records.map((r) => ({ topic: output, key: r.key ?? null, value: r.value ?? null }))
            if (exactlyOnce) {
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
      void partitions
    })
  } finally {
    for (const producer of producers.values()) await producer.close()
    await reader.close()
    await member.close()
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

function summarize(samples: Sample[], partitions: number): ScenarioResult {
  if (samples.length === 0) return { recordsPerSecond: 0, perPartitionRecordsPerSecond: 0, cpuSecondsPerMillion: 0, peakRssMb: 0, runs: [] }
  const rates = samples.map((s) => records / s.seconds)
  const rate = median(rates)
  return {
    recordsPerSecond: Math.round(rate),
    perPartitionRecordsPerSecond: Math.round(rate / partitions),
    cpuSecondsPerMillion: Number((median(samples.map((s) => s.cpuSeconds)) / (records / 1e6)).toFixed(1)),
    peakRssMb: Math.round(Math.max(...samples.map((s) => s.rssMb))),
    runs: rates.map(Math.round),
  }
}

async function main() {
  const infra = await provideInfrastructure({ redis: false, progress })
  const brokers = infra.kafka.brokers
  const admin = createAdmin({ brokers })
  const results: Record<string, { weir: ScenarioResult; rawClient: ScenarioResult; ratio: number }> = {}
  try {
    for (const partitions of partitionCounts) {
      const weirSamples: Sample[] = []
      const rawSamples: Sample[] = []
      for (let r = 0; r < runs; r++) {
        const run = `${Date.now()}-${partitions}-${r}`
        const input = `bench-${run}.input`
        await admin.createTopics([
          { name: input, partitions },
          { name: `bench-${run}.weir-out`, partitions },
          { name: `bench-${run}.raw-out`, partitions },
        ])
        progress.step(`${partitions} partition(s), run ${r + 1}/${runs}: preloading ${records} records`)
        await preload(brokers, input)
        // Alternate the order so neither side always runs on a warmer broker.
        const order = r % 2 === 0 ? (['weir', 'raw'] as const) : (['raw', 'weir'] as const)
        for (const which of order.filter((w) => values.only === undefined || values.only === w)) {
          if (which === 'weir') {
            const sample = await runWeir(brokers, admin, input, `bench-${run}.weir-out`, run)
            weirSamples.push(sample)
            progress.step(`  weir       ${Math.round(records / sample.seconds).toLocaleString('en')} records/s`)
          } else {
            const sample = await runRawClient(brokers, input, `bench-${run}.raw-out`, partitions, run)
            rawSamples.push(sample)
            progress.step(`  raw client ${Math.round(records / sample.seconds).toLocaleString('en')} records/s`)
          }
        }
        await admin.deleteTopics([input, `bench-${run}.weir-out`, `bench-${run}.raw-out`]).catch(() => {})
      }
      const weir = summarize(weirSamples, partitions)
      const rawClient = summarize(rawSamples, partitions)
      results[`partitions=${partitions}`] = { weir, rawClient, ratio: Number((weir.recordsPerSecond / rawClient.recordsPerSecond).toFixed(2)) }
    }
  } finally {
    await admin.close()
    await infra.stop()
  }
  return results
}

main().then(
  (results) => {
    const lines = [
      `records ${records}, payload ${payloadBytes} B, ${keyCount} keys, exactly-once ${exactlyOnce ? 'on' : 'off'}, median of ${runs} runs`,
      '| scenario | weir records/s | weir per partition | raw client records/s | weir ÷ raw | weir CPU s / M records | weir peak RSS MB |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...Object.entries(results).map(
        ([name, r]) =>
          `| ${name} | ${r.weir.recordsPerSecond.toLocaleString('en')} | ${r.weir.perPartitionRecordsPerSecond.toLocaleString('en')} | ${r.rawClient.recordsPerSecond.toLocaleString('en')} | ${r.ratio} | ${r.weir.cpuSecondsPerMillion} | ${r.weir.peakRssMb} |`,
      ),
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
    if (values.json) process.stdout.write(`${JSON.stringify({ records, payloadBytes, keys: keyCount, exactlyOnce, runs, results })}\n`)
    process.exit(0)
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof InfraUnavailable ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
