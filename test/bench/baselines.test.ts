// The Java baselines of the partition benchmark against the real broker: each Kafka Streams mode on a tiny
// input with its outputs checked, and the broker-ceiling parsers on a real ProducerPerformance/ConsumerPerformance
// run. The Maven build runs only when the jar is missing or its sources changed (the first build takes minutes).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { measureBrokerCeiling, parseConsumerPerformance, parseProducerPerformance } from '../../bench/baselines/broker-ceiling.ts'
import { buildKafkaStreamsBaseline, runKafkaStreams } from '../../bench/baselines/kafka-streams.ts'
import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import type { OutgoingRecord } from '../../kafka/index.ts'
import { schedulerRequestSerde } from '../../processors/scheduler.ts'
import { admin, brokers, closeAdmin, createTopics, produce, readAll, uniqueName } from '../helpers/kafka.ts'
import { javaBaselineBuildable } from '../helpers/maven.ts'

const buildable = javaBaselineBuildable()
const skip = buildable ? false : 'mvn is missing: cannot build the Kafka Streams baseline (apt-get install maven)'
const quiet = { step: () => {}, done: () => {} }
let classpath = ''

before(async () => {
  if (buildable) classpath = await buildKafkaStreamsBaseline(quiet)
})
after(closeAdmin)

test('parsers read the summaries of Kafka perf tools', () => {
  const producer = parseProducerPerformance(
    '12 records sent, 6.0 records/sec\n50000 records sent, 98231.8 records/sec (9.37 MB/sec), 120.57 ms avg latency, 301.00 ms max latency, 115 ms 50th, 280 ms 95th, 295 ms 99th, 300 ms 99.9th.\n',
  )
  assert.deepEqual(producer, { records: 50000, recordsPerSecond: 98231.8, mbPerSecond: 9.37, avgLatencyMs: 120.57, maxLatencyMs: 301, p50LatencyMs: 115, p99LatencyMs: 295 })
  const consumer = parseConsumerPerformance(
    'start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n2026-11-22 10:00:00:000, 2026-11-22 10:00:01:000, 4.7684, 4.7684, 50000, 50000.0000, 300, 700, 6.8120, 71428.5714\n',
  )
  assert.deepEqual(consumer, { records: 50000, recordsPerSecond: 50000, mbPerSecond: 4.7684, fetchRecordsPerSecond: 71428.5714, fetchMbPerSecond: 6.812 })
  assert.throws(() => parseProducerPerformance('nothing useful'), /unexpected ProducerPerformance output/)
})

test('counting: one output per input, per-key counts in the store, clean exit on SIGTERM', { skip, timeout: 180_000 }, async (t) => {
  const [input, output] = await createTopics(t, { prefix: 'ks-count-in', partitions: 1 }, { prefix: 'ks-count-out', partitions: 1 })
  const records: OutgoingRecord[] = Array.from({ length: 200 }, (_, i) => ({ topic: input as string, key: `key-${i % 10}`, value: `v-${i}` }))
  await produce(records)
  const applicationId = uniqueName('ks-count')
  const result = await runKafkaStreams({ brokers: brokers(), mode: 'counting', input: input as string, output: output as string, applicationId, exactlyOnce: true, expectedOutputs: 200, classpath })
  assert.equal(result.exitCode, 0)
  assert.equal(result.outputs, 200)
  assert.ok(result.cpuSeconds > 0 && result.peakRssMb > 50, JSON.stringify(result))
  assert.ok(result.startupSeconds > 0 && result.seconds >= result.runningSeconds && result.runningSeconds >= result.firstToLastSeconds, JSON.stringify(result))
  const out = await readAll(output as string)
  assert.deepEqual(
    out.map((r) => [r.key?.toString(), r.value?.toString()]),
    records.map((r) => [r.key, r.value]),
  )
  // The store's changelog holds the counts (the last value per key wins).
  const counts = new Map<string, bigint>()
  for (const r of await readAll(`${applicationId}-counts-changelog`)) counts.set(r.key?.toString() ?? '', (r.value as Buffer).readBigInt64BE())
  assert.deepEqual([...counts.values()], Array(10).fill(20n))
})

test('command-service: dedupe, routing, one outcome per request, timeouts for expired requests', { skip, timeout: 180_000 }, async (t) => {
  const [commands, outcomes, deadlines, late, dlq] = (await createTopics(
    t,
    ...['ks-cmd', 'ks-outcomes', 'ks-deadlines', 'ks-late', 'ks-dlq'].map((prefix) => ({ prefix, partitions: 1 })),
  )) as [string, string, string, string, string]
  const now = Date.now()
  const place = (payload: unknown, extra: Partial<Parameters<typeof createEnvelope>[0]> = {}) =>
    createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias: 'place', payload, clientSessionId: 's1', ttlMs: 60_000, now, ...extra })
  const ok = Array.from({ length: 50 }, (_, i) => place({ sku: `sku-${i % 7}`, qty: i + 1 }))
  const expired = place({ sku: 'late', qty: 1 }, { deadline: now - 1 })
  const lost = place({ sku: 'lost', qty: 1 }, { ttlMs: 2000 }) // registered, never sent: times out at its deadline
  const unknown = place({ sku: 'x', qty: 1 }, { alias: 'nope' })
  const command = (e: Envelope, key = e.requestId): OutgoingRecord => ({ topic: commands, key, value: encodeEnvelope(e) })
  const registration = (e: Envelope): OutgoingRecord => ({ topic: deadlines, key: e.requestId, value: encodeEnvelope(e) })
  await produce([...ok, expired, lost].map(registration))
  await produce([
    ...ok.map((e) => command(e, (e.payload as { sku: string }).sku)),
    command(ok[3] as Envelope, 'sku-3'), // a duplicate delivery
    command(expired),
    command(unknown),
    { topic: commands, key: 'garbage', value: 'not an envelope' },
  ])
  const result = await runKafkaStreams({
    brokers: brokers(),
    mode: 'command-service',
    input: commands,
    output: outcomes,
    applicationId: uniqueName('ks-cmd'),
    exactlyOnce: true,
    expectedOutputs: 53,
    extraArgs: ['--deadlines', deadlines, '--late', late, '--dead-letters', dlq],
    classpath,
  })
  assert.equal(result.exitCode, 0)
  const decoded = (await readAll(outcomes)).map((r) => ({ key: r.key?.toString(), envelope: decodeEnvelope(r.value as Buffer) }))
  assert.equal(decoded.length, 53)
  assert.equal(new Set(decoded.map((d) => d.envelope.requestId)).size, 53, 'exactly one outcome per request')
  for (const d of decoded) assert.equal(d.key, d.envelope.requestId)
  const byRequest = new Map(decoded.map((d) => [d.envelope.requestId, d.envelope]))
  for (const [i, e] of ok.entries()) {
    const outcome = byRequest.get(e.requestId)
    assert.equal(outcome?.status, 'ok')
    assert.equal((outcome?.payload as { accepted: number }).accepted, i + 1)
    assert.equal(outcome?.clientSessionId, 's1')
    assert.equal(outcome?.breadcrumbs.at(-1)?.id, e.id)
  }
  assert.equal(byRequest.get(expired.requestId)?.status, 'timeout')
  const lostOutcome = byRequest.get(lost.requestId)
  assert.equal(lostOutcome?.status, 'timeout')
  assert.equal((lostOutcome?.payload as { code: string }).code, 'WEIR_ERR_DEADLINE_EXCEEDED')
  assert.ok((lostOutcome?.createdAt ?? 0) >= (lost.deadline ?? Infinity), 'a timeout never fires before the deadline')
  assert.equal(byRequest.get(unknown.requestId)?.status, 'error')
  // The duplicate got no second outcome (one per request above) and nothing came late.
  assert.equal((await readAll(late)).length, 0)
  const deadLetters = await readAll(dlq)
  assert.deepEqual(deadLetters.map((r) => r.headers.get('weir.error.code')?.toString()).sort(), [
    'WEIR_ERR_COMMAND_EXPIRED',
    'WEIR_ERR_ENVELOPE_DECODE',
    'WEIR_ERR_UNKNOWN_COMMAND',
  ])
})

test('delayed: weir scheduler requests delivered once, not before their time; cancel and replace', { skip, timeout: 180_000 }, async (t) => {
  const [requests, deliveries] = (await createTopics(t, { prefix: 'ks-schedule', partitions: 1 }, { prefix: 'ks-deliveries', partitions: 1 })) as [string, string]
  const due = new Map<string, number>()
  const schedule = (id: string, deliverAt: number): OutgoingRecord => {
    due.set(id, deliverAt)
    const value = schedulerRequestSerde.serialize({ op: 'schedule', id, deliverAt, topic: deliveries, key: Buffer.from(`k-${id}`), value: Buffer.from(`v-${id}`) })
    return { topic: requests, key: id, value }
  }
  // job-2 .. job-199, due from now on: the first delivery shows that Kafka Streams runs (however long the
  // JVM took to start on this machine).
  const start = Date.now()
  await produce(Array.from({ length: 198 }, (_, i) => schedule(`job-${i + 2}`, start + (i + 2) * 5)))
  // Then, in one batch behind each other: job-0 and its cancel, job-1 and its replacement, and a probe due at
  // once. Records of a partition are processed in order, so once the probe's delivery is visible, the cancel
  // and the replacement were processed; if that was before job-0 and job-1 came due, neither may be
  // delivered at its first time.
  let second: Promise<number> | undefined
  const sendSecond = async () => {
    const at = Date.now()
    await produce([
      schedule('job-0', at + 5000),
      { topic: requests, key: 'job-0', value: schedulerRequestSerde.serialize({ op: 'cancel', id: 'job-0' }) },
      schedule('job-1', at + 5000),
      schedule('job-1', at + 6000),
      schedule('probe', at),
    ])
    return at
  }
  const visible = new Map<string, number>()
  const result = await runKafkaStreams({
    brokers: brokers(),
    mode: 'delayed',
    input: requests,
    output: deliveries,
    applicationId: uniqueName('ks-delayed'),
    exactlyOnce: true,
    // job-2 .. job-199, job-1 and the probe.
    expectedOutputs: 200,
    classpath,
    timeoutMs: 150_000,
    onOutput: (record, visibleAt) => {
      second ??= sendSecond()
      const id = record.headers.get('weir.scheduled.id')?.toString() ?? '?'
      if (!visible.has(id)) visible.set(id, visibleAt)
    },
  })
  assert.equal(result.exitCode, 0)
  const sentAt = await (second as Promise<number>)
  const probeVisible = visible.get('probe') ?? Infinity
  if (probeVisible >= sentAt + 5000) {
    t.skip(`this machine took ${probeVisible - sentAt} ms to deliver the probe: the cancel was not processed before job-0 came due, so the cancel is not tested`)
    return
  }
  const out = await readAll(deliveries)
  const ids = out.map((r) => r.headers.get('weir.scheduled.id')?.toString() as string)
  assert.equal(out.length, 200, ids.join(' '))
  assert.equal(new Set(ids).size, 200)
  assert.ok(!ids.includes('job-0'), 'a cancelled request is not delivered')
  assert.equal(due.get('job-1'), sentAt + 6000, 'job-1 was replaced')
  for (const r of out) {
    const id = r.headers.get('weir.scheduled.id')?.toString() as string
    assert.equal(Number(r.headers.get('weir.scheduled.at')?.toString()), due.get(id), `${id}: the due time of its last request`)
    assert.equal(r.key?.toString(), `k-${id}`)
    assert.equal(r.value?.toString(), `v-${id}`)
    // Never early, by this process's clock when the delivery became visible.
    assert.ok((visible.get(id) ?? 0) >= (due.get(id) ?? Infinity), `${id} visible ${(due.get(id) ?? 0) - (visible.get(id) ?? 0)} ms before its time`)
  }
})

test('broker ceiling: ProducerPerformance and ConsumerPerformance on the shared broker', { timeout: 180_000 }, async () => {
  const topic = uniqueName('ks-ceiling')
  const result = await measureBrokerCeiling({ brokers: brokers(), topic, records: 5000, recordSize: 100 })
  try {
    assert.equal(result.producer.records, 5000)
    assert.ok(result.producer.recordsPerSecond > 0 && result.producer.mbPerSecond > 0)
    assert.equal(result.consumer.records, 5000)
    assert.ok(result.consumer.recordsPerSecond > 0)
  } finally {
    await admin().deleteTopics([topic]).catch(() => {})
  }
})
