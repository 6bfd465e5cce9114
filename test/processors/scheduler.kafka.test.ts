// The scheduler and the deadline arbiter of the command service on the real broker: delayed envelopes
// delivered exactly once across a SIGKILL of the worker process, out-of-order retries with growing delays,
// and a result racing its deadline yielding exactly one outcome, the same for every reader.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import type { ConsumedRecord } from '../../kafka/index.ts'
import type { CommandService } from '../../processors/command-service.ts'
import { schedulerRequestSerde } from '../../processors/scheduler.ts'
import { chaosCommand, chaosCommandService, deliveredTopic } from '../fixtures/chaos-command-service.ts'
import type { ChaosCommandServiceOptions, ChaosWork } from '../fixtures/chaos-command-service.ts'
import { admin, brokers, closeAdmin, consume, produce, readAll, uniqueName } from '../helpers/kafka.ts'
import { firstSeen, watchTopic } from '../helpers/visibility.ts'
import { waitFor } from '../helpers/wait.ts'
import { spawnWorker, waitForAssignment } from '../helpers/workers.ts'
import type { WorkerProcess } from '../helpers/workers.ts'
import { startTestRuntime } from '../helpers/runtime.ts'

after(closeAdmin)

const MODULE = resolve(import.meta.dirname, '../fixtures/chaos-command-service.ts')
const header = (record: ConsumedRecord | undefined, name: string) => record?.headers.get(name)?.toString()

/** Every topic of the fixture's service (co-partitioned sources), deleted after the test. */
async function createServiceTopics(t: TestContext, service: CommandService, prefix: string, partitions: number): Promise<{ delivered: string; dlq: string }> {
  const s = service.topics
  const delivered = deliveredTopic(prefix)
  const dlq = `${s.commands}.dlq`
  const names = [s.commands, s.deadlines, s.scheduler, s.outcomes, s.lateResults, s.events, dlq, delivered]
  await admin().createTopics(names.map((name) => ({ name, partitions })))
  t.after(() => admin().deleteTopics(names).catch(() => {}))
  return { delivered, dlq }
}

/** Runs the fixture's service in this process; stopped after the test. */
async function runService(t: TestContext, options: ChaosCommandServiceOptions, partitions = 1) {
  const service = chaosCommandService(options)
  const topics = await createServiceTopics(t, service, options.prefix, partitions)
  const { runtime } = await startTestRuntime(t, { applicationId: uniqueName('sch-app'), topology: service.topology, stateDirPrefix: 'weir-scheduler-' })
  return { service, runtime, ...topics }
}

const work = (payload: ChaosWork, extra: { ttlMs?: number; outOfOrder?: boolean } = {}): Envelope<ChaosWork> =>
  createEnvelope({
    kind: 'command',
    ...chaosCommand,
    payload,
    ...(extra.ttlMs === undefined ? {} : { ttlMs: extra.ttlMs }),
    ...(extra.outOfOrder ? { retry: { outOfOrder: true, count: 0 } } : {}),
  })

test('delayed envelopes are delivered exactly once and never early across a SIGKILL of the worker process', async (t) => {
  const prefix = uniqueName('sch-kill')
  const service = chaosCommandService({ prefix })
  const { delivered } = await createServiceTopics(t, service, prefix, 2)
  const base = await mkdtemp(join(tmpdir(), 'weir-scheduler-kill-'))
  const applicationId = uniqueName('sch-kill-app')
  const start = () =>
    spawnWorker({ name: 'scheduler', module: MODULE, brokers: brokers(), stateDir: join(base, 'w'), applicationId, env: { WEIR_CHAOS_CS_PREFIX: prefix } })
  let worker: WorkerProcess = start()
  t.after(async () => {
    await worker.kill('SIGKILL')
    await rm(base, { recursive: true, force: true })
  })
  await waitForAssignment([worker], 2, 60_000).catch((e: unknown) => assert.fail(`${String(e)}\n${worker.logs()}`))

  const count = 400
  // The test's own reader: when each delivery became visible, by this process's clock.
  const watch = await watchTopic(delivered)
  t.after(() => watch.stop())
  const now = Date.now()
  const due = new Map<string, number>()
  const requests = Array.from({ length: count }, (_, i) => {
    const id = `env-${i}`
    const deliverAt = now + 1000 + ((i * 7919) % 6000)
    due.set(id, deliverAt)
    const value = schedulerRequestSerde.serialize({ op: 'schedule', id, deliverAt, topic: delivered, key: Buffer.from(id), value: Buffer.from(id) })
    return { topic: service.topics.scheduler, key: id, value }
  })
  await produce(requests)

  // Kill -9 once some envelopes, not all, are out: the rest are due while no worker runs, or soon after.
  await watch.until((seen) => seen.length >= 40, '40 deliveries before the kill')
  assert.equal(await worker.kill('SIGKILL'), null)
  const beforeKill = (await readAll(delivered)).length
  assert.ok(beforeKill < count, `the kill came mid-way (${beforeKill} of ${count} delivered)`)
  worker = start()
  await waitForAssignment([worker], 2, 60_000).catch((e: unknown) => assert.fail(`${String(e)}\n${worker.logs()}`))
  const scheduledId = (r: ConsumedRecord) => header(r, 'weir.scheduled.id')
  await watch.until((seen) => new Set(seen.map((s) => scheduledId(s.record))).size >= count, `all ${count} envelopes delivered`)
  // Complete. Then make sure nothing more can come: every timer fired (a timer the restore kept after its
  // delivery would fire again now), and the worker stopped, committing what it did. Reading to the end
  // offsets after that sees any duplicate, however late.
  await waitFor(async () => (await timersPending(worker)) === 0, { what: 'no timer pending on the worker', timeoutMs: 30_000 })
  assert.equal(await worker.kill('SIGTERM'), 0, worker.logs())
  const deliveries = await readAll(delivered)
  const perId = new Map<string, number>()
  for (const record of deliveries) {
    const id = scheduledId(record) ?? '?'
    perId.set(id, (perId.get(id) ?? 0) + 1)
    assert.equal(record.value?.toString(), id, 'the scheduled value, unchanged')
    assert.equal(header(record, 'weir.scheduled.at'), String(due.get(id)))
  }
  assert.deepEqual([...perId.keys()].sort(), [...due.keys()].sort(), 'every envelope delivered')
  assert.deepEqual([...perId].filter(([, n]) => n > 1), [], 'none delivered twice')
  assert.equal(deliveries.length, count)
  // Never early, by the reader's clock: no delivery was visible before its due time.
  const visible = firstSeen(watch.seen, scheduledId)
  const early = [...due].filter(([id, at]) => (visible.get(id) ?? Infinity) < at).map(([id, at]) => `${id} ${at - (visible.get(id) ?? 0)} ms early`)
  assert.deepEqual(early, [], 'none visible before its due time')
  const stampedEarly = deliveries.filter((r) => Number(r.timestamp) < (due.get(scheduledId(r) ?? '') ?? Infinity)).length
  const lateness = [...due].map(([id, at]) => (visible.get(id) ?? at) - at).sort((a, b) => a - b)
  t.diagnostic(`visible after due: p50 ${lateness[Math.floor(count / 2)]} ms, max ${lateness.at(-1)} ms; stamped before due by the worker: ${stampedEarly}`)
})

/** weir_timers_pending summed over the worker's /metrics lines (undefined while it has none). */
async function timersPending(worker: WorkerProcess): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${await worker.port}/metrics`)).text()
  const values = [...text.matchAll(/^weir_timers_pending(?:\{[^}]*\})? (\d+)$/gm)].map((m) => Number(m[1]))
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0)
}

test('out-of-order retries come back with growing delays, while the partition moves on; exhausted ones are dead-lettered', async (t) => {
  const prefix = uniqueName('sch-retry')
  const attempts = new Map<string, number[]>()
  const baseMs = 300
  const { service, dlq } = await runService(t, {
    prefix,
    retryBaseMs: baseMs,
    retryAttempts: 4,
    onAttempt: (command, at) => attempts.set(command.requestId, [...(attempts.get(command.requestId) ?? []), at]),
  })
  const s = service.topics
  const recovers = work({ workMs: 0, failures: 3 }, { outOfOrder: true })
  const exhausts = work({ workMs: 0, failures: 99 }, { outOfOrder: true })
  const behind = work({ workMs: 0, failures: 0 })
  // When each retry request became visible, by this process's clock: it was scheduled before that.
  const schedulerWatch = await watchTopic(s.scheduler)
  t.after(() => schedulerWatch.stop())
  await produce([recovers, exhausts, behind].map((c) => ({ topic: s.commands, key: c.requestId, value: encodeEnvelope(c) })))

  const outcomes = (await consume(s.outcomes, { count: 3, timeoutMs: 30_000 })).map((r) => decodeEnvelope(r.value as Buffer))
  assert.equal(outcomes[0]?.requestId, behind.requestId, 'the command behind the failing ones did not wait for their retries')
  const outcome = (c: Envelope) => outcomes.find((o) => o.requestId === c.requestId)
  assert.equal(outcome(recovers)?.status, 'ok')
  assert.deepEqual(outcome(recovers)?.payload, { retries: 3 }, 'it succeeded on its 4th delivery')
  assert.equal(outcome(exhausts)?.status, 'error')
  assert.equal((outcome(exhausts)?.payload as { code: string }).code, 'WEIR_ERR_RETRIES_EXHAUSTED')

  // Each delivery of a retried command came after the delay it was scheduled with, and the delays grow.
  for (const command of [recovers, exhausts]) {
    const times = attempts.get(command.requestId) ?? []
    assert.equal(times.length, 4, 'four deliveries (retryAttempts)')
    const gaps = times.slice(1).map((at, i) => at - (times[i] as number))
    gaps.forEach((gap, i) => assert.ok(gap >= baseMs * 2 ** i, `gap ${i + 1} is ${gap} ms, scheduled ${baseMs * 2 ** i} ms`))
    // How much later than scheduled each came depends on the machine's load: shown, not asserted.
    t.diagnostic(`${command === recovers ? 'recovers' : 'exhausts'}: gaps between deliveries ${gaps.join(', ')} ms`)
  }
  // The retries went through the scheduler topic with exactly the exponential delays, ids retry:<id>:<count>.
  // A retry's deliverAt is "now" plus its delay, "now" being a moment between the start of the failed attempt
  // and the request becoming visible to this process's reader: both bounds are events, no tolerance needed.
  await schedulerWatch.until((seen) => seen.length >= 6, 'six retry requests visible')
  const requests = schedulerWatch.seen.map(({ record, seenAt }) => ({ request: schedulerRequestSerde.deserialize(record.value ?? undefined), seenAt }))
  for (const command of [recovers, exhausts]) {
    const times = attempts.get(command.requestId) ?? []
    const mine = requests.filter(({ request }) => request.id.startsWith(`retry:${command.id}:`))
    assert.deepEqual(mine.map(({ request }) => request.id), [1, 2, 3].map((n) => `retry:${command.id}:${n}`))
    mine.forEach(({ request, seenAt }, i) => {
      const delay = baseMs * 2 ** i
      const scheduledAt = (request.op === 'schedule' ? request.deliverAt : 0) - delay
      const attemptAt = times[i] as number
      assert.ok(scheduledAt >= attemptAt && scheduledAt <= seenAt, `retry ${i + 1}: deliverAt - ${delay} ms is ${scheduledAt - attemptAt} ms after its failed attempt started, ${seenAt - scheduledAt} ms before the request was visible`)
    })
  }
  // Redelivered commands carry the scheduler's headers on the commands topic: each retry delivered once.
  const redelivered = (await readAll(s.commands)).map((r) => header(r, 'weir.scheduled.id')).filter((id) => id !== undefined)
  assert.equal(redelivered.length, 6)
  assert.equal(new Set(redelivered).size, 6)

  const [dead] = await consume(dlq, { count: 1 })
  assert.equal(header(dead, 'weir.error.code'), 'WEIR_ERR_RETRIES_EXHAUSTED')
  assert.equal(header(dead, 'weir.origin.topic'), s.commands)
  assert.equal(header(dead, 'weir.processor'), 'router')
  assert.equal(decodeEnvelope(dead?.value as Buffer).retry?.count, 3, 'the dead letter is the last delivery')
})

test('a command finishing at its deadline yields exactly one outcome, the same for every reader', async (t) => {
  const prefix = uniqueName('sch-race')
  const handled = new Set<string>()
  const { service, dlq } = await runService(t, { prefix, onHandled: (command) => handled.add(command.requestId) })
  const s = service.topics
  // A first command without a deadline measures the round trip (produce -> outcome visible) on this machine.
  const warmUp = work({ workMs: 0, failures: 0 })
  const sent = Date.now()
  await produce([{ topic: s.commands, key: warmUp.requestId, value: encodeEnvelope(warmUp) }])
  await consume(s.outcomes, { count: 1, timeoutMs: 30_000 })
  const roundTripMs = Date.now() - sent
  // One partition, 10 ms of work each: command i's result is back about roundTrip + 10·i ms after the batch
  // is sent. Its TTL is that times 0.6 to 1.6, so results and deadlines race all along the batch.
  const n = 200
  const workMs = 10
  const commands = Array.from({ length: n }, (_, i) => work({ workMs, failures: 0 }, { ttlMs: Math.round((roundTripMs + i * workMs) * (0.6 + (i % 6) * 0.2)) }))
  await produce(commands.flatMap((c) => [
    { topic: s.commands, key: c.requestId, value: encodeEnvelope(c) },
    { topic: s.deadlines, key: c.requestId, value: encodeEnvelope(c) },
  ]))
  handled.delete(warmUp.requestId)
  const mine = (records: ConsumedRecord[]) => records.filter((r) => decodeEnvelope(r.value as Buffer).requestId !== warmUp.requestId)

  const first = mine(await consume(s.outcomes, { count: n + 1, timeoutMs: 40_000 }))
  // A second decision could only come from a deadline timer: wait until every deadline passed, then send a
  // marker through the same task. Timers due before it was processed fired in its commit or an earlier one.
  const lastDeadline = Math.max(...commands.map((c) => c.deadline ?? 0))
  await waitFor(() => Date.now() > lastDeadline, { what: 'every deadline passed', timeoutMs: 60_000 })
  const marker = work({ workMs: 0, failures: 0 })
  await produce([{ topic: s.commands, key: marker.requestId, value: encodeEnvelope(marker) }])
  await consume(s.outcomes, { until: (r) => decodeEnvelope(r.value as Buffer).requestId === marker.requestId, timeoutMs: 30_000 })
  handled.delete(marker.requestId)
  const ours = (records: ConsumedRecord[]) => mine(records).filter((r) => decodeEnvelope(r.value as Buffer).requestId !== marker.requestId)
  // Then two more independent readers.
  const second = ours(await readAll(s.outcomes))
  const third = ours(await consume(s.outcomes, { count: n + 2, timeoutMs: 20_000 }))
  const view = (records: ConsumedRecord[]) =>
    records
      .map((r) => decodeEnvelope(r.value as Buffer))
      .map((o) => `${o.requestId} ${o.status} ${o.id}`)
      .sort()
  assert.equal(second.length, n, 'exactly one outcome per request on the topic')
  assert.deepEqual(view(first), view(second), 'a group reader and a partition reader see the same outcomes')
  assert.deepEqual(view(third), view(second), 'a later reader sees the same outcomes')
  const outcomes = new Map(second.map((r) => decodeEnvelope(r.value as Buffer)).map((o) => [o.requestId, o.status]))
  assert.deepEqual([...outcomes.keys()].sort(), commands.map((c) => c.requestId).sort())
  const ok = [...outcomes].filter(([, status]) => status === 'ok').map(([id]) => id)
  const timedOut = [...outcomes].filter(([, status]) => status === 'timeout').map(([id]) => id)
  assert.equal(ok.length + timedOut.length, n)
  // Which side wins how many races depends on the machine's speed: shown, not asserted.
  t.diagnostic(`results won ${ok.length} races, timeouts ${timedOut.length} (round trip ${roundTripMs} ms)`)

  // The results that lost are kept on the late topic, once each; executed commands are exactly those with
  // an ok outcome or a late result; the others expired before they started and were dead-lettered. The
  // marker's commit carried everything the task did before it, so all of it is readable now.
  const late = await readAll(s.lateResults)
  const lateIds = late.map((r) => decodeEnvelope(r.value as Buffer).requestId)
  assert.ok(late.every((r) => header(r, 'weir.late') === 'timeout'), 'a result only ever loses to a timeout')
  assert.equal(new Set(lateIds).size, lateIds.length, 'each late result once')
  assert.ok(lateIds.every((id) => outcomes.get(id) === 'timeout'))
  assert.deepEqual([...new Set([...ok, ...lateIds])].sort(), [...handled].sort(), 'every executed command: its result is the outcome or a late result')
  const expired = await readAll(dlq)
  assert.ok(expired.every((r) => header(r, 'weir.error.code') === 'WEIR_ERR_COMMAND_EXPIRED'))
  assert.equal(expired.length + handled.size, n, 'a command not executed was dead-lettered as expired')
})
