// The chaos verdict on synthetic records (no broker): a clean run passes, and each kind of defect fails
// exactly the checks that name it.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope, followUp } from '../../envelope/envelope.ts'
import type { Envelope, ResultStatus } from '../../envelope/envelope.ts'
import type { ConsumedRecord } from '../../kafka/types.ts'
import { schedulerRequestSerde } from '../../processors/scheduler.ts'
import { ChaosTracker, CommandServiceChaosTracker, SCHEDULED_ID_HEADER, addCommandServiceRecord, chaosRunReport, chaosVerdict } from './chaos-check.ts'
import type { ChaosRequest, ChaosRunFacts, CommandServiceChaosTopics } from './chaos-check.ts'

const topics: CommandServiceChaosTopics = { commands: 'cs.commands', scheduler: 'cs.scheduler', outcomes: 'cs.results', lateResults: 'cs.results.late', deadLetters: 'cs.commands.dlq', deliveries: ['cs.delivered'] }
const OUTPUT = 'chaos.output'
const T0 = 1_000_000

interface Seen {
  record: ConsumedRecord
  visibleAt: number
}

function record(topic: string, value: Buffer | string | null, options: { headers?: Record<string, string>; timestamp?: number } = {}): ConsumedRecord {
  return {
    topic,
    partition: 0,
    offset: 0n,
    timestamp: BigInt(options.timestamp ?? T0),
    key: undefined,
    value: value === null ? undefined : Buffer.from(value),
    headers: new Map(Object.entries(options.headers ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
  }
}

/** A synthetic run: what the tail read (with when each record became visible), what was sent, the run's facts. */
interface Run {
  records: number
  outputs: Seen[]
  service: Seen[]
  requests: ChaosRequest[]
  envelopes: string[]
  facts: ChaosRunFacts
}

const output = (value: object, visibleAt = T0, timestamp = T0): Seen => ({ record: record(OUTPUT, JSON.stringify(value), { timestamp }), visibleAt })
const fired = (timer: string, at: number, lateMs = 5, visibleAt = at + lateMs + 20): Seen => output({ type: 'fired', timer, lateMs }, visibleAt, at + lateMs)

const commands = new Map<string, Envelope>()
function command(requestId: string): Envelope {
  const existing = commands.get(requestId)
  if (existing !== undefined) return existing
  const created = createEnvelope({ kind: 'command', contextPath: 'chaos', alias: 'work', topicAlias: 'chaos', payload: {}, requestId, id: `id-${requestId}`, ttlMs: 30_000, now: T0 })
  commands.set(requestId, created)
  return created
}
const outcome = (requestId: string, status: ResultStatus, code?: string): Seen => ({
  record: record(topics.outcomes, encodeEnvelope(followUp(command(requestId), { kind: 'result', alias: 'work', status, payload: code === undefined ? null : { code }, now: T0 }))),
  visibleAt: T0,
})
const late = (requestId: string, header = 'timeout'): Seen => ({
  record: record(topics.lateResults, encodeEnvelope(followUp(command(requestId), { kind: 'result', alias: 'work', status: 'ok', payload: null, now: T0 })), { headers: { 'weir.late': header } }),
  visibleAt: T0,
})
const deadLetter = (requestId: string, code: string): Seen => ({ record: record(topics.deadLetters, encodeEnvelope(command(requestId)), { headers: { 'weir.error.code': code } }), visibleAt: T0 })
const schedule = (id: string, deliverAt: number): Seen => ({
  record: record(topics.scheduler, schedulerRequestSerde.serialize({ op: 'schedule', id, deliverAt, topic: 'x', value: Buffer.from(id) })),
  visibleAt: T0,
})
const delivery = (topic: string, id: string, visibleAt: number): Seen => ({ record: record(topic, id, { headers: { [SCHEDULED_ID_HEADER]: id }, timestamp: visibleAt }), visibleAt })

/** Twelve inputs on two keys, timers t-0, t-3, t-6, t-9 (t-6 cancelled); six requests, one of each way to end; two envelopes. */
function cleanRun(): Run {
  const outputs: Seen[] = []
  const counts = [0, 0]
  for (let seq = 0; seq < 12; seq++) {
    const key = seq % 2
    counts[key] = (counts[key] as number) + 1
    outputs.push(output({ type: 'processed', seq, key: `k-${key}`, count: counts[key] }))
    if (seq === 7) outputs.push(output({ type: 'cancelled', timer: 't-6' }))
    if (seq % 3 === 0) outputs.push(output({ type: 'set', timer: `t-${seq}` }))
  }
  outputs.push(fired('t-0', T0 + 200), fired('t-3', T0 + 300), fired('t-9', T0 + 900))
  const requests: ChaosRequest[] = [
    { requestId: 'ok', commandId: 'id-ok', expect: 'succeeds', retries: 0 },
    { requestId: 'retried', commandId: 'id-retried', expect: 'succeeds', retries: 2 },
    { requestId: 'failed', commandId: 'id-failed', expect: 'fails', retries: 3 },
    { requestId: 'raced-ok', commandId: 'id-raced-ok', expect: 'may-time-out', retries: 0 },
    { requestId: 'raced-late', commandId: 'id-raced-late', expect: 'may-time-out', retries: 0 },
    { requestId: 'raced-expired', commandId: 'id-raced-expired', expect: 'may-time-out', retries: 0 },
  ]
  const service: Seen[] = [
    schedule('envelope-0', T0 + 300),
    schedule('envelope-1', T0 + 800),
    delivery('cs.delivered', 'envelope-0', T0 + 310),
    delivery('cs.delivered', 'envelope-1', T0 + 805),
  ]
  for (const [id, n] of [['id-retried', 2], ['id-failed', 3]] as const) {
    for (let i = 1; i <= n; i++) service.push(schedule(`retry:${id}:${i}`, T0 + 100 * i), delivery(topics.commands, `retry:${id}:${i}`, T0 + 100 * i + 7))
  }
  service.push(
    outcome('ok', 'ok'),
    outcome('retried', 'ok'),
    outcome('failed', 'error', 'WEIR_ERR_RETRIES_EXHAUSTED'),
    deadLetter('failed', 'WEIR_ERR_RETRIES_EXHAUSTED'),
    outcome('raced-ok', 'ok'),
    outcome('raced-late', 'timeout', 'WEIR_ERR_DEADLINE_EXCEEDED'),
    late('raced-late'),
    outcome('raced-expired', 'timeout', 'WEIR_ERR_DEADLINE_EXCEEDED'),
    deadLetter('raced-expired', 'WEIR_ERR_COMMAND_EXPIRED'),
  )
  return {
    records: 12,
    outputs,
    service,
    requests,
    envelopes: ['envelope-0', 'envelope-1'],
    facts: {
      kills: 2,
      killsRequested: 2,
      restarts: 2,
      unplannedExits: 0,
      workers: 2,
      commandServiceWorkers: 1,
      partitions: 2,
      seconds: 1,
      brokers: 3,
      brokerKillsRequested: 2,
      brokerKills: 2,
      brokerKillTargets: ['source-leader:1', 'transaction-coordinator:2'],
      brokerRecoverySeconds: [12.5, 30],
    },
  }
}

function judge(run: Run) {
  const topology = new ChaosTracker(run.records)
  for (const { record: r, visibleAt } of run.outputs) topology.add(r, visibleAt)
  const service = new CommandServiceChaosTracker(run.requests, run.envelopes)
  for (const { record: r, visibleAt } of run.service) addCommandServiceRecord(service, topics, r, visibleAt)
  const report = chaosRunReport(topology.report(), service.report(), run.facts)
  return { report, failed: chaosVerdict(report).map((f) => f.slice(0, f.indexOf(':'))), complete: topology.complete() && service.complete() }
}

/** Fails exactly `checks` after `defect` is applied to a clean run. */
function assertFails(defect: (run: Run) => void, checks: string[]) {
  const run = cleanRun()
  defect(run)
  const { failed, report } = judge(run)
  assert.deepEqual(failed.sort(), [...checks].sort(), JSON.stringify(report))
}

const remove = (list: Seen[], match: (seen: Seen) => boolean) => {
  const index = list.findIndex(match)
  assert.ok(index >= 0, 'the clean run has the record to remove')
  list.splice(index, 1)
}
const text = (seen: Seen) => seen.record.value?.toString('utf8') ?? ''
const header = (seen: Seen, name: string) => seen.record.headers.get(name)?.toString()
const scheduledId = (seen: Seen) => schedulerRequestSerde.deserialize(seen.record.value).id
const readRequestId = (seen: Seen) => decodeEnvelope(seen.record.value as Buffer).requestId

test('a clean run passes and is complete', () => {
  const { failed, complete, report } = judge(cleanRun())
  assert.deepEqual(failed, [], JSON.stringify(report))
  assert.equal(complete, true)
  assert.equal(report.unexpectedOutcomes, 0)
  assert.equal(report.deliveredEarly, 0)
  assert.equal(report.retriesScheduled, 5)
  assert.equal(report.envelopesExpected, 7)
  assert.equal(report.outcomesTimeout, 2)
})

test('the chaos topology: duplicates, losses and wrong counts', () => {
  // A processed record read twice (its count repeats, so the per-key count is wrong too).
  assertFails((run) => run.outputs.push(output({ type: 'processed', seq: 11, key: 'k-1', count: 7 })), ['duplicates'])
  assertFails((run) => run.outputs.push(output({ type: 'processed', seq: 4, key: 'k-0', count: 7 })), ['duplicates'])
  assertFails((run) => run.outputs.push(output({ type: 'processed', seq: 5, key: 'k-1', count: 4 })), ['duplicates', 'wrongCounts'])
  // An input never processed (seq 10 is not a timer's seq).
  assertFails((run) => remove(run.outputs, (s) => text(s).includes('"seq":11')), ['lost'])
  // Per-key state lost across a restart: the count starts again.
  assertFails((run) => {
    const index = run.outputs.findIndex((s) => text(s).includes('"seq":10'))
    run.outputs[index] = output({ type: 'processed', seq: 10, key: 'k-0', count: 1 })
  }, ['wrongCounts'])
  assertFails((run) => run.outputs.push(output({ type: 'processed', seq: 99, key: 'k-9', count: 1 })), ['duplicates', 'outputsUnknown'])
  assertFails((run) => run.outputs.push(output({ type: 'bogus' })), ['outputsUnknown'])
  assertFails((run) => run.outputs.push({ record: record(OUTPUT, 'not json'), visibleAt: T0 }), ['outputsUnknown'])
})

test('the chaos topology: timers twice, after cancel, missing, never set, early', () => {
  assertFails((run) => run.outputs.push(fired('t-3', T0 + 300)), ['timersDuplicated'])
  assertFails((run) => run.outputs.push(fired('t-6', T0 + 600)), ['timersFiredAfterCancel'])
  assertFails((run) => remove(run.outputs, (s) => text(s).includes('"fired"') && text(s).includes('t-9')), ['timersMissing'])
  assertFails((run) => remove(run.outputs, (s) => text(s).includes('"set"') && text(s).includes('t-9')), ['timersNotSet'])
  assertFails((run) => run.outputs.push(output({ type: 'set', timer: 't-3' })), ['timerEventsDuplicated'])
  assertFails((run) => run.outputs.push(output({ type: 'cancelled', timer: 't-6' })), ['timerEventsDuplicated'])
  assertFails((run) => run.outputs.push(output({ type: 'set', timer: 't-4' })), ['outputsUnknown', 'timersMissing'])
  // Early by the reader's clock: the worker's stamp says 5 ms late, but the record was visible 10 ms before due.
  assertFails((run) => {
    remove(run.outputs, (s) => text(s).includes('"fired"') && text(s).includes('t-9'))
    run.outputs.push(fired('t-9', T0 + 900, 5, T0 + 890))
  }, ['deliveredEarly'])
  // A run whose topology set no timer at all proves nothing about timers.
  assertFails((run) => {
    run.records = 0
    run.outputs = []
  }, ['records', 'timersSet'])
})

test('the command service: every request ends as its class allows, with the traces its outcome implies', () => {
  // Two outcomes for one request.
  assertFails((run) => run.service.push(outcome('ok', 'ok')), ['requestsWithTwoOutcomes'])
  assertFails((run) => run.service.push(outcome('raced-ok', 'timeout')), ['requestsWithTwoOutcomes', 'unexpectedOutcomes', 'timeoutsWithoutTrace'])
  assertFails((run) => remove(run.service, (s) => s.record.topic === topics.outcomes && readRequestId(s) === 'ok'), ['requestsWithoutOutcome'])
  // A lost command masked by a timeout: the feed's registration timed it out, and the service left no trace of it.
  assertFails((run) => remove(run.service, (s) => s.record.topic === topics.lateResults), ['unexpectedOutcomes', 'timeoutsWithoutTrace'])
  assertFails((run) => remove(run.service, (s) => header(s, 'weir.error.code') === 'WEIR_ERR_COMMAND_EXPIRED'), ['unexpectedOutcomes', 'timeoutsWithoutTrace'])
  // A command with 30 s to live timed out (with no trace: a lost command; or with its late result): not an
  // outcome its class allows.
  assertFails((run) => {
    remove(run.service, (s) => s.record.topic === topics.outcomes && readRequestId(s) === 'ok')
    run.service.push(outcome('ok', 'timeout'))
  }, ['unexpectedOutcomes', 'timeoutsWithoutTrace'])
  assertFails((run) => {
    remove(run.service, (s) => s.record.topic === topics.outcomes && readRequestId(s) === 'ok')
    run.service.push(outcome('ok', 'timeout'), late('ok'))
  }, ['unexpectedOutcomes'])
  // A command that must fail succeeded; one that must succeed failed.
  assertFails((run) => {
    remove(run.service, (s) => s.record.topic === topics.outcomes && readRequestId(s) === 'failed')
    run.service.push(outcome('failed', 'ok'))
  }, ['unexpectedOutcomes'])
  assertFails((run) => {
    remove(run.service, (s) => s.record.topic === topics.outcomes && readRequestId(s) === 'retried')
    run.service.push(outcome('retried', 'error', 'WEIR_ERR_RETRIES_EXHAUSTED'))
  }, ['unexpectedOutcomes'])
  assertFails((run) => remove(run.service, (s) => header(s, 'weir.error.code') === 'WEIR_ERR_RETRIES_EXHAUSTED'), ['unexpectedOutcomes'])
  assertFails((run) => run.service.push(outcome('nobody', 'ok')), ['unknownRequestRecords'])
  assertFails((run) => run.service.push({ record: record(topics.outcomes, 'not an envelope'), visibleAt: T0 }), ['unknownRequestRecords'])
  // A run without requests proves nothing about them.
  assertFails((run) => {
    run.requests = []
    run.service = run.service.filter((s) => (s.record.topic === topics.scheduler && scheduledId(s).startsWith('envelope-')) || s.record.topic === 'cs.delivered')
  }, ['requests'])
})

test('the command service: late results are counted per request', () => {
  // A command run twice whose results both lost to the timeout: two late results, one outcome.
  assertFails((run) => run.service.push(late('raced-late')), ['lateResultsDuplicated', 'unexpectedOutcomes'])
  // A result that lost to another result.
  assertFails((run) => run.service.push(late('raced-ok', 'ok')), ['duplicateResults', 'unexpectedOutcomes'])
})

test('the command service: schedule requests and deliveries, each id exactly once and never early', () => {
  // A retry request committed twice.
  assertFails((run) => run.service.push(schedule('retry:id-retried:1', T0 + 100)), ['scheduleRequestsDuplicated'])
  assertFails((run) => run.service.push(schedule('envelope-1', T0 + 800)), ['scheduleRequestsDuplicated'])
  // A retry never written (nor delivered).
  assertFails((run) => {
    remove(run.service, (s) => s.record.topic === topics.scheduler && scheduledId(s) === 'retry:id-failed:3')
    remove(run.service, (s) => header(s, SCHEDULED_ID_HEADER) === 'retry:id-failed:3')
  }, ['scheduleRequestsMissing'])
  assertFails((run) => run.service.push(schedule('retry:id-ok:1', T0 + 100), delivery(topics.commands, 'retry:id-ok:1', T0 + 200)), ['scheduleRequestsUnknown'])
  assertFails((run) => run.service.push({ record: record(topics.scheduler, schedulerRequestSerde.serialize({ op: 'cancel', id: 'envelope-0' })), visibleAt: T0 }), ['scheduleRequestsUnknown'])
  assertFails((run) => run.service.push(delivery('cs.delivered', 'envelope-0', T0 + 320)), ['envelopesDuplicated'])
  assertFails((run) => run.service.push(delivery('cs.delivered', 'envelope-7', T0 + 320)), ['envelopesDuplicated'])
  assertFails((run) => remove(run.service, (s) => header(s, SCHEDULED_ID_HEADER) === 'envelope-1'), ['envelopesMissing'])
  // Early by the reader's clock: visible 1 ms before its deliverAt (the worker's stamp would say otherwise).
  assertFails((run) => {
    remove(run.service, (s) => header(s, SCHEDULED_ID_HEADER) === 'envelope-1')
    run.service.push({ record: record('cs.delivered', 'envelope-1', { headers: { [SCHEDULED_ID_HEADER]: 'envelope-1' }, timestamp: T0 + 800 }), visibleAt: T0 + 799 })
  }, ['deliveredEarly'])
  assertFails((run) => {
    run.envelopes = []
    run.requests = run.requests.map((r) => ({ ...r, retries: 0, expect: r.expect === 'fails' ? 'succeeds' : r.expect }))
    run.service = run.service.filter((s) => s.record.topic !== topics.scheduler && header(s, SCHEDULED_ID_HEADER) === undefined && header(s, 'weir.error.code') !== 'WEIR_ERR_RETRIES_EXHAUSTED')
    remove(run.service, (s) => s.record.topic === topics.outcomes && readRequestId(s) === 'failed')
    run.service.push(outcome('failed', 'ok'))
  }, ['envelopesExpected'])
})

test('the run itself: the kills asked for were done, and at least one', () => {
  assertFails((run) => {
    run.facts.kills = 1
  }, ['kills'])
  assertFails((run) => {
    run.facts.kills = 0
    run.facts.killsRequested = 0
  }, ['kills'])
})

test('the run itself: the broker kills asked for were done, each followed by every task committing within 30 s', () => {
  assertFails((run) => {
    run.facts.brokerKills = 1
    run.facts.brokerKillTargets = ['source-leader:1']
    run.facts.brokerRecoverySeconds = [3]
  }, ['brokerKills'])
  // A rolling restart may do more kills than asked for.
  assertFails((run) => {
    run.facts.brokerKills = 4
    run.facts.brokerKillTargets = ['source-leader:1', 'rolling:1', 'rolling:2', 'rolling:3']
    run.facts.brokerRecoverySeconds = [3, 4, 5, 6]
  }, [])
  assertFails((run) => {
    run.facts.brokerRecoverySeconds = [12.5, 30.1]
  }, ['brokerRecoverySeconds'])
  assertFails((run) => {
    run.facts.brokerRecoverySeconds = [null, 2]
  }, ['brokerRecoverySeconds'])
  assertFails((run) => {
    run.facts.brokerRecoverySeconds = [2]
  }, ['brokerRecoverySeconds'])
  // Without broker kills (one broker), nothing to recover from.
  assertFails((run) => {
    run.facts.brokers = 1
    run.facts.brokerKillsRequested = 0
    run.facts.brokerKills = 0
    run.facts.brokerKillTargets = []
    run.facts.brokerRecoverySeconds = []
  }, [])
})

test('an incomplete run is not complete until the missing records arrive', () => {
  const run = cleanRun()
  const lateRecord = run.service.find((s) => s.record.topic === topics.lateResults) as Seen
  run.service = run.service.filter((s) => s !== lateRecord)
  const service = new CommandServiceChaosTracker(run.requests, run.envelopes)
  for (const s of run.service) addCommandServiceRecord(service, topics, s.record, s.visibleAt)
  // A timeout whose trace is still on its way: not complete yet.
  assert.equal(service.complete(), false)
  addCommandServiceRecord(service, topics, lateRecord.record, lateRecord.visibleAt)
  assert.equal(service.complete(), true)
})
