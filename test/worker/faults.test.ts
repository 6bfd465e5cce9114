// Fault injection on the real broker: a worker process of the orders example with --faults true; a test turns
// a rule on and off through the control topic and sees its effect on the outcomes, its weir.fault header and
// its metric; malformed control records are refused with their code, counted and skipped; a worker without
// --faults injects nothing whatever the control topic says; a bad rules file fails the start.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import type { ConsumedRecord } from '../../kafka/index.ts'
import { createOrdersTopics } from '../../examples/orders/create-topics.ts'
import { ordersTopics } from '../../examples/orders/service.ts'
import { admin, brokers, closeAdmin, consume, produce, readAll, uniqueName } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { spawnWorker, waitForAssignment } from '../helpers/workers.ts'
import type { WorkerProcess } from '../helpers/workers.ts'

after(closeAdmin)

const ROOT = resolve(import.meta.dirname, '../..')
const MODULE = resolve(ROOT, 'examples/orders/topology.ts')

async function metrics(worker: WorkerProcess): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${await worker.port}/metrics`)
  return response.text()
}

/** The value of one sample (labels as written by prom-client, application_id first), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    if (labels !== '' && !line.includes(labels)) continue
    return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

async function setup(t: TestContext, extraArgs: string[]) {
  const prefix = uniqueName('faults')
  await createOrdersTopics({ brokers: brokers(), prefix, partitions: 2 })
  const applicationId = `${prefix}-service`
  const stateDir = await mkdtemp(join(tmpdir(), 'weir-faults-'))
  const worker = spawnWorker({ name: 'faults', module: MODULE, brokers: brokers(), stateDir, applicationId, env: { WEIR_ORDERS_PREFIX: prefix }, extraArgs })
  t.after(async () => {
    await worker.kill('SIGKILL')
    await rm(stateDir, { recursive: true, force: true })
  })
  await waitForAssignment([worker], 2, 90_000).catch((e: unknown) => assert.fail(`${String(e)}\n${worker.logs()}`))
  const topics = ordersTopics(prefix)
  let n = 0
  /** Sends one place command and returns its outcome record (and the command). */
  const place = async (): Promise<{ outcome: Envelope; record: ConsumedRecord; command: Envelope }> => {
    const orderId = `o${n++}`
    const command = createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias: 'place', payload: { orderId, sku: 'sku-1', qty: 1 } })
    await produce([{ topic: topics.commands, key: orderId, value: encodeEnvelope(command) }])
    const [record] = (await consume(topics.results, { until: (r) => r.value !== undefined && r.value !== null && decodeEnvelope(r.value).requestId === command.requestId, timeoutMs: 60_000 })).slice(-1)
    assert.ok(record?.value)
    return { outcome: decodeEnvelope(record.value), record, command }
  }
  const control = (value: string, key = 'rule') => produce([{ topic: `${applicationId}.faults`, key, value }])
  return { worker, place, control, topics, controlTopic: `${applicationId}.faults` }
}

const header = (record: ConsumedRecord, name: string) => record.headers.get(name)?.toString()

test('a fault rule set through the control topic takes effect, shows in metrics and headers, and is deleted again without a restart', async (t) => {
  const { worker, place, control } = await setup(t, ['--faults', 'true'])
  const before = await place()
  assert.equal(before.outcome.status, 'ok')
  assert.equal(header(before.record, 'weir.fault'), undefined)
  assert.equal(sample(await metrics(worker), 'weir_fault_rules'), 0)

  await control(JSON.stringify({ op: 'set', rule: { id: 'boom', kind: 'error', match: { path: 'orders/orders/place' } } }), 'boom')
  await waitFor(async () => sample(await metrics(worker), 'weir_fault_rules') === 1, { timeoutMs: 30_000 })
  const failed = await place()
  assert.equal(failed.outcome.status, 'error')
  assert.equal((failed.outcome.payload as { code: string }).code, 'WEIR_ERR_NON_RETRIABLE')
  assert.equal(header(failed.record, 'weir.fault'), 'error:boom')
  assert.equal(sample(await metrics(worker), 'weir_faults_injected_total', 'kind="error",rule="boom"'), 1)

  // Malformed records: refused with the code, logged, counted, skipped; the rule in force stays.
  await control('{"op":"set","rule":{"id":"bad","kind":"explode"}}', 'bad')
  await control('not json at all', 'worse')
  await waitFor(async () => sample(await metrics(worker), 'weir_fault_control_rejected_total') === 2, { timeoutMs: 30_000 })
  assert.equal(sample(await metrics(worker), 'weir_fault_rules'), 1)
  assert.match(worker.logs(), /WEIR_ERR_FAULT_RULE_INVALID/)
  assert.match(worker.logs(), /kind must be one of delay, error, drop, duplicate, corrupt/)
  assert.equal((await place()).outcome.status, 'error', 'still injected after the malformed records')

  await control(JSON.stringify({ op: 'delete', id: 'boom' }), 'boom')
  await waitFor(async () => sample(await metrics(worker), 'weir_fault_rules') === 0, { timeoutMs: 30_000 })
  const after = await place()
  assert.equal(after.outcome.status, 'ok')
  assert.equal(header(after.record, 'weir.fault'), undefined)
  assert.equal(sample(await metrics(worker), 'weir_faults_injected_total', 'kind="error",rule="boom"'), 2)
})

test('a worker without --faults injects nothing and exports no fault metrics, whatever its control topic holds', async (t) => {
  const { worker, place, control, controlTopic } = await setup(t, [])
  // Nobody reads it: a worker without --faults does not even create it.
  await admin().createTopics([{ name: controlTopic, partitions: 1 }])
  await control(JSON.stringify({ op: 'set', rule: { id: 'boom', kind: 'error' } }), 'boom')
  assert.equal((await place()).outcome.status, 'ok')
  const text = await metrics(worker)
  assert.equal(sample(text, 'weir_fault_rules'), undefined)
  assert.doesNotMatch(text, /weir_faults_injected_total/)
})

test('rules from a rules file are in force from the start; a bad rules file fails the start with every problem', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weir-fault-rules-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const bad = join(dir, 'bad.json')
  await writeFile(bad, JSON.stringify([{ id: 'a', kind: 'delay' }, { id: 'b', kind: 'error', probability: 2 }]))
  const result = spawnSync(process.execPath, [resolve(ROOT, 'worker/cli.ts'), 'worker', MODULE, '--fault-rules', bad, '--faults-topic', 'x'], { encoding: 'utf8', env: process.env })
  assert.equal(result.status, 2)
  assert.match(result.stderr, /--fault-rules needs --faults true/)
  assert.match(result.stderr, /--faults-topic needs --faults true/)
  const withFaults = spawnSync(process.execPath, [resolve(ROOT, 'worker/cli.ts'), 'worker', MODULE, '--faults', 'true', '--fault-rules', bad], { encoding: 'utf8', env: process.env })
  assert.equal(withFaults.status, 2)
  assert.match(withFaults.stderr, /WEIR_ERR_FAULT_RULE_INVALID/)
  assert.match(withFaults.stderr, /rules\[0\].*delayMs must be an integer/)
  assert.match(withFaults.stderr, /rules\[1\].*probability must be a number from 0 to 1/)

  const good = join(dir, 'good.json')
  await writeFile(good, JSON.stringify({ rules: [{ id: 'garble', kind: 'corrupt', match: { path: 'orders/orders/place' } }] }))
  const { worker, place } = await setup(t, ['--faults', 'true', '--fault-rules', good])
  const corrupted = await place()
  assert.equal((corrupted.outcome.payload as { code: string }).code, 'WEIR_ERR_SCHEMA_VIOLATION')
  assert.equal(header(corrupted.record, 'weir.fault'), 'corrupt:garble')
  assert.equal(sample(await metrics(worker), 'weir_faults_injected_total', 'kind="corrupt",rule="garble"'), 1)
})

test('duplicate: the copy is a second delivery of the same envelope on the commands topic, and the dedupe store drops it', async (t) => {
  const { worker, place, control, topics } = await setup(t, ['--faults', 'true'])
  await control(JSON.stringify({ op: 'set', rule: { id: 'twice', kind: 'duplicate', match: { topic: topics.commands } } }), 'twice')
  await waitFor(async () => sample(await metrics(worker), 'weir_fault_rules') === 1, { timeoutMs: 30_000 })
  const { outcome, command } = await place()
  assert.equal(outcome.status, 'ok')
  // The copy comes back through the scheduler to the commands topic, marked.
  const deliveries = await consume(topics.commands, { timeoutMs: 60_000, until: (_r, all) => all.filter((r) => r.value !== undefined && decodeEnvelope(r.value).id === command.id).length === 2 })
  const copies = deliveries.filter((r) => r.value !== undefined && decodeEnvelope(r.value).id === command.id)
  assert.deepEqual(copies.map((r) => header(r, 'weir.fault')), [undefined, 'duplicate:twice'])
  assert.equal(copies[1]?.key?.toString(), copies[0]?.key?.toString(), 'same key: same partition, same dedupe store')
  // A command after the copy on the same partition (same key): once its outcome is there, the copy was handled.
  await control(JSON.stringify({ op: 'delete', id: 'twice' }), 'twice')
  const orderId = (command.payload as { orderId: string }).orderId
  const get = createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias: 'get', payload: { orderId } })
  await produce([{ topic: topics.commands, key: orderId, value: encodeEnvelope(get) }])
  await consume(topics.results, { timeoutMs: 60_000, until: (r) => r.value !== undefined && decodeEnvelope(r.value).requestId === get.requestId })
  const outcomes = await readAll(topics.results)
  assert.equal(outcomes.filter((r) => r.value !== undefined && decodeEnvelope(r.value).requestId === command.requestId).length, 1)
  assert.equal(sample(await metrics(worker), 'weir_faults_injected_total', 'kind="duplicate",rule="twice"'), 1)
})
