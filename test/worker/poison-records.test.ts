// No record can stop a partition: records of every size class up to the broker's limit (empty, tiny, near
// 1 MiB, exactly at the limit; garbage and almost-valid envelopes) go into every partition of the example
// orders service (examples/orders) running in the Kafka runtime; afterwards every partition still serves
// commands, each with exactly one outcome, and the near-limit records are dead-lettered, truncated to fit.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { after, test } from 'node:test'

import { pack } from 'msgpackr'

import { isWeirError } from '../../core/errors.ts'
import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { createOrdersTopics } from '../../examples/orders/create-topics.ts'
import { ordersService } from '../../examples/orders/service.ts'
import { partitionFor } from '../../kafka/index.ts'
import type { ConsumedRecord, OutgoingRecord } from '../../kafka/index.ts'
import { inspectDeadLetters, reinjectDeadLetters } from '../../worker/dead-letters.ts'
import { admin, brokers, closeAdmin, consume, produce, readAll, uniqueName } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { startTestRuntime } from '../helpers/runtime.ts'

after(closeAdmin)

const PARTITIONS = 3
const cli = fileURLToPath(new URL('../../worker/dead-letters.ts', import.meta.url))

let n = 0
const command = (alias: string, payload: unknown, extra: Partial<Envelope> = {}): Envelope => ({
  ...createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'orders', alias, payload, requestId: `req-${++n}`, clientSessionId: 's-poison', ttlMs: 120_000 }),
  ...extra,
})

/** The largest value with a 1-byte key the broker takes as one record (a record batch exactly at its limit). */
async function largestAccepted(topic: string, partition: number, limit: number): Promise<Buffer> {
  // A batch of one record with a 1-byte key and no headers is the value plus 73 bytes (61 of batch header).
  for (let size = limit - 73; size > limit - 200; size--) {
    const value = Buffer.alloc(size, 0xc1)
    try {
      await produce([{ topic, partition, key: 'k', value }])
    } catch (error) {
      assert.ok(isWeirError(error, 'WEIR_ERR_KAFKA') && /MESSAGE_TOO_LARGE/.test(error.message), String(error))
      continue
    }
    // One byte more is refused: this one is at the limit.
    await assert.rejects(produce([{ topic, partition, key: 'k', value: Buffer.alloc(size + 1, 0xc1) }]), /MESSAGE_TOO_LARGE/)
    return value
  }
  throw new Error(`no record near ${limit} bytes was accepted`)
}

test('records of every size class and shape leave every partition serving commands with exactly one outcome each', async (t) => {
  const prefix = uniqueName('poison')
  const topicNames = await createOrdersTopics({ brokers: brokers(), prefix, partitions: PARTITIONS })
  const service = ordersService({ prefix })
  const { commands, deadlines, outcomes } = service.topics
  const dlq = `${commands}.dlq`
  const { runtime } = await startTestRuntime(t, { applicationId: `${prefix}-service`, topology: service.topology, stateDirPrefix: 'weir-poison-', start: false })
  t.after(async () => {
    const all = await admin().listTopics()
    await admin().deleteTopics([...topicNames, ...all.filter((name) => name.startsWith(prefix) && !topicNames.includes(name))]).catch(() => {})
  })
  await runtime.start()
  const limit = (await admin().maxMessageBytes([commands])).get(commands)
  assert.ok(limit !== undefined && limit > 1_048_400, `the commands topic's max.message.bytes (${limit})`)

  // Per partition: every size class, garbage and almost-valid envelopes. `expected` is what each should give.
  const valid = encodeEnvelope(command('place', { orderId: 'o', sku: 's', qty: 1 }))
  // Garbage may be refused as undecodable or as decoded-but-invalid (one byte can be a msgpack value): either code.
  const GARBAGE = /^WEIR_ERR_ENVELOPE_(DECODE|INVALID)$/
  const shapes: Array<{ name: string; value: Buffer | null; code: RegExp }> = [
    { name: 'tombstone', value: null, code: GARBAGE },
    { name: 'empty', value: Buffer.alloc(0), code: GARBAGE },
    { name: 'one byte', value: Buffer.from([0xc1]), code: GARBAGE },
    { name: 'the reported 1,048,400-byte garbage', value: Buffer.alloc(1_048_400, 0xc1), code: GARBAGE },
    { name: 'a msgpack map that is no envelope', value: pack({ hello: 'world' }), code: /^WEIR_ERR_ENVELOPE_INVALID$/ },
    { name: 'an envelope cut short', value: valid.subarray(0, valid.byteLength - 1), code: GARBAGE },
    { name: 'an envelope with a trailing byte', value: Buffer.concat([valid, Buffer.from([0])]), code: GARBAGE },
    { name: 'an envelope of a future version', value: pack({ ...(decodeEnvelope(valid) as unknown as Record<string, unknown>), v: 99 }), code: /^WEIR_ERR_ENVELOPE_VERSION$/ },
    { name: 'an envelope with a string createdAt', value: pack({ ...(decodeEnvelope(valid) as unknown as Record<string, unknown>), v: 1, createdAt: 'now' }), code: /^WEIR_ERR_ENVELOPE_INVALID$/ },
    { name: 'an event on the commands topic', value: encodeEnvelope({ ...command('place', {}), kind: 'event' }), code: /^WEIR_ERR_UNKNOWN_COMMAND$/ },
  ]
  const garbage: OutgoingRecord[] = []
  /** The dead letter each bad record should get: its partition, its `shape` header and its code. */
  const expected: Array<{ partition: number; shape: string; code: RegExp }> = []
  const errorOutcomes: string[] = []
  for (let partition = 0; partition < PARTITIONS; partition++) {
    for (const shape of shapes) {
      garbage.push({ topic: commands, partition, key: `g-${partition}`, value: shape.value, headers: { shape: shape.name, 'weir.stale': 'x' } })
      expected.push({ partition, shape: shape.name, code: shape.code })
    }
    // Valid envelopes the router refuses: an unknown command, a schema violation (both with an error outcome),
    // one as large as the envelope limit allows (its dead letter does not fit whole).
    const refusedByRouter: Array<[string, Envelope, RegExp]> = [
      ['an unknown command', command('teleport', {}), /^WEIR_ERR_UNKNOWN_COMMAND$/],
      ['a schema violation', command('place', { orderId: 'bad id!', qty: 0 }), /^WEIR_ERR_SCHEMA_VIOLATION$/],
      ['an unknown command at the envelope limit', command('teleport', { pad: 'p'.repeat(1_048_000) }), /^WEIR_ERR_UNKNOWN_COMMAND$/],
    ]
    for (const [name, refused, code] of refusedByRouter) {
      garbage.push({ topic: commands, partition, key: `g-${partition}`, value: encodeEnvelope(refused), headers: { shape: name, 'weir.stale': 'x' } })
      expected.push({ partition, shape: name, code })
      errorOutcomes.push(refused.requestId)
    }
  }
  await produce(garbage)
  // Exactly at the broker's limit, on every partition.
  const atLimit: Buffer[] = []
  for (let partition = 0; partition < PARTITIONS; partition++) {
    atLimit.push(await largestAccepted(commands, partition, limit))
    expected.push({ partition, shape: 'at the limit', code: GARBAGE })
  }

  // Afterwards, commands for orders on every partition, with their deadline registrations as the gateway sends them.
  const orderIds: string[] = []
  for (let i = 0; orderIds.length < PARTITIONS * 2; i++) {
    const id = `order-${i}`
    if (orderIds.filter((o) => partitionFor(o, PARTITIONS) === partitionFor(id, PARTITIONS)).length < 2) orderIds.push(id)
  }
  const placed = orderIds.map((orderId) => command('place', { orderId, sku: 'fig', qty: 1 }))
  await produce(placed.flatMap((c) => {
    const orderId = (c.payload as { orderId: string }).orderId
    return [
      { topic: deadlines, key: orderId, value: encodeEnvelope(c) },
      { topic: commands, key: orderId, value: encodeEnvelope(c) },
    ]
  }))
  const wanted = new Set([...placed.map((c) => c.requestId), ...errorOutcomes])
  const seen = new Set<string>()
  await consume(outcomes, {
    timeoutMs: 90_000,
    until: (record) => {
      seen.add(decodeEnvelope(record.value as Buffer).requestId)
      return [...wanted].every((id) => seen.has(id))
    },
  })
  const all = (await readAll(outcomes)).map((r) => decodeEnvelope(r.value as Buffer))
  const count = new Map<string, Envelope[]>()
  for (const o of all) count.set(o.requestId, [...(count.get(o.requestId) ?? []), o])
  for (const id of wanted) assert.equal(count.get(id)?.length, 1, `exactly one outcome for ${id}`)
  for (const c of placed) assert.equal(count.get(c.requestId)?.[0]?.status, 'ok', `${(c.payload as { orderId: string }).orderId} was placed`)
  assert.equal(all.length, wanted.size, 'no other outcome')

  // Every bad record has its dead letter, committed once; the ones near the limit are truncated to fit.
  const letters = await waitFor(async () => {
    const read = await readAll(dlq)
    return read.length >= expected.length ? read : undefined
  }, { what: 'every dead letter', timeoutMs: 30_000 })
  const header = (r: ConsumedRecord, name: string) => r.headers.get(name)?.toString()
  assert.equal(letters.length, expected.length, 'one dead letter per bad record')
  for (const { partition, shape, code } of expected) {
    const found = letters.filter((r) => header(r, 'weir.origin.partition') === String(partition) && (header(r, 'shape') ?? 'at the limit') === shape)
    assert.equal(found.length, 1, `${shape} on partition ${partition}: one dead letter`)
    assert.match(header(found[0] as ConsumedRecord, 'weir.error.code') ?? '', code, `${shape}: its code`)
  }
  for (const r of letters) {
    assert.equal(header(r, 'weir.stale'), undefined, "the record's own weir.* headers are not carried over")
    const whole = (r.value?.byteLength ?? -1) === Number(header(r, 'weir.value.size'))
    assert.equal(header(r, 'weir.truncated') === undefined, whole, `${header(r, 'shape') ?? header(r, 'weir.error.code')}: truncated exactly when cut`)
  }
  const truncated = letters.filter((r) => header(r, 'weir.truncated') !== undefined)
  // The 1,048,400-byte garbage, the record at the limit and the largest valid envelope, on each partition.
  assert.equal(truncated.length, 3 * PARTITIONS)
  for (const value of atLimit) {
    const letter = truncated.find((r) => header(r, 'weir.value.size') === String(value.byteLength))
    assert.ok(letter, 'the record at the limit was dead-lettered')
    assert.equal(header(letter, 'weir.truncated'), 'value')
    assert.equal(header(letter, 'weir.value.sha256'), createHash('sha256').update(value).digest('hex'))
    assert.deepEqual(letter.value, value.subarray(0, letter.value?.byteLength), 'as much of the value as fits')
  }
  const metrics = await runtime.metrics()
  assert.equal(metrics.deadLettered, letters.length, 'the counter counts committed dead letters only')
  assert.equal(metrics.failedCommits, 0, 'no transaction failed')
  assert.deepEqual(metrics.failures, [])

  // `weir dlq inspect` shows the truncation; `weir dlq reinject` refuses truncated letters with a coded message.
  const inspected = await inspectDeadLetters({ brokers: brokers(), topic: dlq, limit: 1000 })
  assert.equal(inspected.filter((l) => l.truncated.length > 0).length, truncated.length)
  const dryRun = await reinjectDeadLetters({ brokers: brokers(), topic: dlq, dryRun: true })
  assert.equal(dryRun.refused.length, truncated.length)
  assert.ok(dryRun.refused.every((r) => r.error.code === 'WEIR_ERR_DEAD_LETTER_TRUNCATED'))
  assert.equal(dryRun.records.length, letters.length - truncated.length)
  const human = spawnSync(process.execPath, [cli, 'inspect', '--topic', dlq, '--brokers', brokers().join(','), '--code', 'WEIR_ERR_ENVELOPE_DECODE', '--limit', '1000'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  assert.equal(human.status, 0, human.stderr)
  assert.match(human.stdout, /TRUNCATED: value cut to fit the topic; value \d+ of 1048400 bytes kept/)
  const refused = spawnSync(process.execPath, [cli, 'reinject', '--topic', dlq, '--brokers', brokers().join(','), '--dry-run', '--code', 'WEIR_ERR_ENVELOPE_DECODE'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  assert.equal(refused.status, 1, 'a run that refused letters fails')
  assert.match(refused.stderr, /refused \(WEIR_ERR_DEAD_LETTER_TRUNCATED\): .*was truncated to fit its topic/)
})
