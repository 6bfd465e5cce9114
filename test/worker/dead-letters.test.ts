// `weir dlq inspect|reinject` on the real broker: dead letters carry the headers the runtime writes
// (deadLetterHeaders), re-injection restores the original record to its origin partition, and a second
// re-injection duplicates nothing (the DLQ position commits in the same transaction).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import { WeirError } from '../../core/errors.ts'
import type { ErrorCode } from '../../core/errors.ts'
import type { OutgoingRecord } from '../../kafka/index.ts'
import { deadLetterHeaders } from '../../topology/dead-letter.ts'
import { fitDeadLetter } from '../../topology/runtime/dead-letter-fit.ts'
import { REINJECTED_FROM_HEADER, inspectDeadLetters, reinjectDeadLetters } from '../../worker/dead-letters.ts'
import { brokers, closeAdmin, createTopics, produce, readAll, uniqueName } from '../helpers/kafka.ts'

after(closeAdmin)

const cli = fileURLToPath(new URL('../../worker/dead-letters.ts', import.meta.url))

function deadLetter(dlq: string, origin: string, n: number, code: ErrorCode, partition: number): OutgoingRecord {
  const headers = deadLetterHeaders(new WeirError(code, `failure ${n}`), {
    topic: origin,
    partition,
    offset: BigInt(100 + n),
    timestamp: 1_700_000_000_000n + BigInt(n),
    headers: new Map([
      ['traceparent', Buffer.from(`trace-${n}`)],
      ['weir.old', Buffer.from('dropped by the runtime already')],
    ]),
    processor: 'router',
    attempts: 3,
  })
  return { topic: dlq, partition: n % 2, key: `key-${n}`, value: `value-${n}`, headers }
}

async function setup(t: TestContext) {
  const [origin, dlq, other] = await createTopics(t, { prefix: 'dlq-origin', partitions: 3 }, { prefix: 'dlq', partitions: 2 }, { prefix: 'dlq-other', partitions: 1 })
  assert.ok(origin && dlq && other)
  const letters = [
    deadLetter(dlq, origin, 0, 'WEIR_ERR_PROCESSING', 2),
    deadLetter(dlq, origin, 1, 'WEIR_ERR_DESERIALIZATION', 0),
    deadLetter(dlq, origin, 2, 'WEIR_ERR_PROCESSING', 1),
    deadLetter(dlq, origin, 3, 'WEIR_ERR_PROCESSING', 0),
    deadLetter(dlq, origin, 4, 'WEIR_ERR_RETRIES_EXHAUSTED', 2),
  ]
  await produce(letters)
  return { origin, dlq, other }
}

test('inspect shows every dead letter with its error, origin, attempts and processor; filters by code', async (t) => {
  const { origin, dlq } = await setup(t)
  const all = await inspectDeadLetters({ brokers: brokers(), topic: dlq })
  assert.equal(all.length, 5)
  const first = all.find((l) => l.record.key?.toString() === 'key-2')
  assert.ok(first)
  assert.equal(first.code, 'WEIR_ERR_PROCESSING')
  assert.equal(first.message, 'failure 2')
  assert.deepEqual(first.origin, { topic: origin, partition: 1, offset: 102n, timestamp: 1_700_000_000_002n })
  assert.equal(first.attempts, 3)
  assert.equal(first.processor, 'router')
  assert.deepEqual(Object.keys(first.originalHeaders), ['traceparent'])
  assert.deepEqual((await inspectDeadLetters({ brokers: brokers(), topic: dlq, code: 'WEIR_ERR_PROCESSING' })).map((l) => l.record.key?.toString()).sort(), ['key-0', 'key-2', 'key-3'])
  assert.equal((await inspectDeadLetters({ brokers: brokers(), topic: dlq, limit: 2 })).length, 2)

  const run = spawnSync(process.execPath, [cli, 'inspect', '--topic', dlq, '--brokers', brokers().join(','), '--json', '--code', 'WEIR_ERR_RETRIES_EXHAUSTED'], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  const lines = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  assert.equal(lines.length, 1)
  assert.equal(lines[0]?.code, 'WEIR_ERR_RETRIES_EXHAUSTED')
  assert.deepEqual(lines[0]?.origin, { topic: origin, partition: 2, offset: '104', timestamp: '1700000000004' })
  assert.equal(Buffer.from(lines[0]?.value as string, 'base64').toString(), 'value-4')
  const human = spawnSync(process.execPath, [cli, 'inspect', '--topic', dlq, '--brokers', brokers().join(',')], { encoding: 'utf8' })
  assert.equal(human.status, 0, human.stderr)
  assert.match(human.stdout, /WEIR_ERR_DESERIALIZATION/)
  assert.match(human.stdout, new RegExp(`origin: +${origin}/0@101`))
  assert.match(human.stdout, /5 dead letter\(s\)/)
})

test('reinject restores selected letters to their origin partition once; a second run duplicates nothing', async (t) => {
  const { origin, dlq, other } = await setup(t)
  const groupId = uniqueName('reinject')
  const dry = await reinjectDeadLetters({ brokers: brokers(), topic: dlq, code: 'WEIR_ERR_PROCESSING', dryRun: true, groupId })
  assert.equal(dry.records.length, 3)
  assert.equal(dry.reinjected, 0)
  assert.equal((await readAll(origin)).length, 0, 'a dry run produces nothing')

  const first = await reinjectDeadLetters({ brokers: brokers(), topic: dlq, code: 'WEIR_ERR_PROCESSING', groupId })
  assert.equal(first.reinjected, 3)
  assert.equal(first.skipped, 2)
  const restored = await readAll(origin)
  assert.deepEqual(restored.map((r) => r.key?.toString()).sort(), ['key-0', 'key-2', 'key-3'])
  for (const record of restored) {
    const n = Number(record.key?.toString().split('-')[1])
    assert.equal(record.value?.toString(), `value-${n}`)
    assert.equal(record.partition, [2, 0, 1, 0, 2][n], 'back to the partition it came from')
    assert.deepEqual([...record.headers.keys()].sort(), ['traceparent', REINJECTED_FROM_HEADER])
    assert.equal(record.headers.get('traceparent')?.toString(), `trace-${n}`)
    assert.equal(record.headers.get(REINJECTED_FROM_HEADER)?.toString(), `${dlq}/${n % 2}/${Math.floor(n / 2)}`)
  }

  const second = await reinjectDeadLetters({ brokers: brokers(), topic: dlq, groupId })
  assert.equal(second.examined, 0, 'the position committed with the first run')
  assert.equal((await readAll(origin)).length, 3)

  // A new dead letter: only it is picked up next time (through the CLI).
  await produce([deadLetter(dlq, origin, 5, 'WEIR_ERR_PROCESSING', 1)])
  const run = spawnSync(process.execPath, [cli, 'reinject', '--topic', dlq, '--brokers', brokers().join(','), '--group', groupId, '--json'], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  const summary = JSON.parse(run.stdout) as { reinjected: number; examined: number }
  assert.equal(summary.reinjected, 1)
  assert.equal(summary.examined, 1)
  const after = await readAll(origin)
  assert.deepEqual(after.map((r) => r.key?.toString()).sort(), ['key-0', 'key-2', 'key-3', 'key-5'])

  // --from-offset revisits letters the --code filter passed over, to another topic.
  const again = await reinjectDeadLetters({ brokers: brokers(), topic: dlq, groupId, to: other, fromOffset: 0n, code: 'WEIR_ERR_DESERIALIZATION' })
  assert.equal(again.reinjected, 1)
  const [moved, ...none] = await readAll(other)
  assert.equal(none.length, 0)
  assert.equal(moved?.key?.toString(), 'key-1')
})

test('letters without an origin topic are reported and left in place; bad arguments exit with 2', async (t) => {
  const [dlq] = await createTopics(t, { prefix: 'dlq-bare', partitions: 1 })
  assert.ok(dlq)
  await produce([{ topic: dlq, key: 'k', value: 'v', headers: { 'weir.error.code': 'WEIR_ERR_PROCESSING' } }])
  const result = await reinjectDeadLetters({ brokers: brokers(), topic: dlq, groupId: uniqueName('bare') })
  assert.equal(result.reinjected, 0)
  assert.deepEqual(result.unroutable, [{ partition: 0, offset: 0n }])
  assert.equal((await inspectDeadLetters({ brokers: brokers(), topic: dlq })).length, 1)

  const bad = spawnSync(process.execPath, [cli, 'reinject', '--brokers', brokers().join(','), '--from-offset', 'x'], { encoding: 'utf8' })
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /--topic is required; --from-offset must be an offset/)
  assert.equal(spawnSync(process.execPath, [cli, 'purge'], { encoding: 'utf8' }).status, 2)
})

test('a truncated letter: inspect --json shows what was cut and the full value\'s size and hash; reinject refuses it with a coded message', async (t) => {
  const [origin, dlq] = await createTopics(t, { prefix: 'dlq-cut-origin', partitions: 1 }, { prefix: 'dlq-cut', partitions: 1 })
  assert.ok(origin && dlq)
  const full = Buffer.alloc(10_000, 3)
  const whole = fitDeadLetter({ ...deadLetter(dlq, origin, 0, 'WEIR_ERR_PROCESSING', 0), partition: 0 }, 1_048_588)
  const cut = fitDeadLetter({ ...deadLetter(dlq, origin, 1, 'WEIR_ERR_DESERIALIZATION', 0), partition: 0, value: full }, 4096)
  await produce([whole, cut])
  const run = spawnSync(process.execPath, [cli, 'inspect', '--topic', dlq, '--brokers', brokers().join(','), '--json'], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  const [first, second] = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  assert.deepEqual(first?.truncated, [])
  assert.equal(first?.valueSize, 7)
  assert.deepEqual(second?.truncated, ['value'])
  assert.equal(second?.valueSize, 10_000)
  assert.equal(second?.valueSha256, createHash('sha256').update(full).digest('hex'))
  assert.ok(Buffer.from(second?.value as string, 'base64').byteLength < 4096)

  const groupId = uniqueName('cut')
  const refused = spawnSync(process.execPath, [cli, 'reinject', '--topic', dlq, '--brokers', brokers().join(','), '--group', groupId, '--json'], { encoding: 'utf8' })
  assert.equal(refused.status, 1, 'a run that refused a letter fails')
  assert.match(refused.stderr, new RegExp(`refused \\(WEIR_ERR_DEAD_LETTER_TRUNCATED\\): ${dlq}/0@1 was truncated to fit its topic \\(value cut; value \\d+ of 10000 bytes`))
  const summary = JSON.parse(refused.stdout) as { reinjected: number; refused: Array<{ at: string; code: string }> }
  assert.equal(summary.reinjected, 1, 'the whole letter is re-injected')
  assert.deepEqual(summary.refused.map((r) => [r.at, r.code]), [['0@1', 'WEIR_ERR_DEAD_LETTER_TRUNCATED']])
  assert.deepEqual((await readAll(origin)).map((r) => r.value?.toString()), ['value-0'], 'nothing truncated reached the origin')
})
