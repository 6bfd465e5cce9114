// The command service on the real broker: TTL under lag, one outcome per request, dedupe across a restart
// (state restored from the changelog), dead letters with their headers.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import type { TestContext } from 'node:test'

import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import type { ConsumedRecord } from '../../kafka/index.ts'
import { createCommandRegistry } from '../../processors/command-router.ts'
import { commandService } from '../../processors/command-service.ts'
import type { CommandService } from '../../processors/command-service.ts'
import type { StreamRuntime } from '../../topology/runtime/runtime-options.ts'
import { closeAdmin, consume, createTopics, produce, readAll, uniqueName } from '../helpers/kafka.ts'
import { watchTopic } from '../helpers/visibility.ts'
import { waitFor } from '../helpers/wait.ts'
import { startTestRuntime } from '../helpers/runtime.ts'

after(closeAdmin)

interface Service {
  service: CommandService
  handled: string[]
}

async function setUp(t: TestContext, handlerDelayMs = 0): Promise<Service> {
  const [commands, results, events] = await createTopics(t, { prefix: 'cs-commands', partitions: 1 }, { prefix: 'cs-results', partitions: 1 }, { prefix: 'cs-events', partitions: 1 })
  assert.ok(commands && results && events)
  const handled: string[] = []
  const registry = createCommandRegistry({
    topicAlias: 'orders',
    topics: { commands, results, events },
    handlers: [
      {
        contextPath: 'shop',
        alias: 'place',
        payloadSchema: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' } } },
        stores: ['orders'],
        async handle(ctx: { payload: { sku: string }; command: Envelope; store: (n: string) => { put(k: string, v: unknown): Promise<void> }; emit(a: string, p: unknown): void }) {
          if (handlerDelayMs > 0) await new Promise((r) => setTimeout(r, handlerDelayMs))
          handled.push(ctx.command.requestId)
          await ctx.store('orders').put(ctx.payload.sku, true)
          ctx.emit('placed', { sku: ctx.payload.sku })
          return { placed: ctx.payload.sku }
        },
      },
    ],
  })
  const service = commandService({ registry })
  const s = service.topics
  // The service's other topics, as a deployment would create them.
  for (const name of [s.deadlines, s.scheduler, s.lateResults]) await createTopicNamed(t, name)
  return { service, handled }
}

async function createTopicNamed(_t: TestContext, name: string): Promise<void> {
  const { admin } = await import('../helpers/kafka.ts')
  await admin().createTopics([{ name, partitions: 1 }])
}

async function run(t: TestContext, service: CommandService, applicationId: string, stateDir?: string): Promise<{ runtime: StreamRuntime; stateDir: string }> {
  return startTestRuntime(t, { applicationId, topology: service.topology, stateDirPrefix: 'weir-cs-', ...(stateDir === undefined ? {} : { stateDir }) })
}

const command = (sku: string, extra: Parameters<typeof createEnvelope>[0] | object = {}) =>
  createEnvelope({ kind: 'command', topicAlias: 'orders', contextPath: 'shop', alias: 'place', payload: { sku }, clientSessionId: 'session-1', ...extra })

const outcomeOf = (record: ConsumedRecord) => decodeEnvelope(record.value as Buffer)

test('the timeout reaches the outcomes topic at the deadline while the command waits behind a backlog', async (t) => {
  const { service, handled } = await setUp(t, 2)
  const s = service.topics
  // 1500 commands of 2 ms each: the last one is reached after 3 s or more.
  const backlog = Array.from({ length: 1500 }, (_, i) => ({ sku: `sku-${i}`, envelope: command(`sku-${i}`) }))
  await produce(backlog.map((c) => ({ topic: s.commands, key: c.sku, value: encodeEnvelope(c.envelope) })))
  const late = command('late-sku', { ttlMs: 1500 })
  // The gateway registers the deadline when it sends the command, keyed like the command (same partition).
  await produce([
    { topic: s.commands, key: 'late-sku', value: encodeEnvelope(late) },
    { topic: s.deadlines, key: 'late-sku', value: encodeEnvelope(late) },
  ])
  // The test's own reader: when each outcome became visible, by this process's clock.
  const watch = await watchTopic(s.outcomes)
  t.after(() => watch.stop())
  const { runtime } = await run(t, service, uniqueName('cs-lag'))
  await watch.until((seen) => seen.length >= 1501, '1501 outcomes', 120_000)
  // Stopped, the worker writes nothing more: reading to the end offsets sees a second outcome too.
  await runtime.stop()
  const decoded = (await readAll(s.outcomes)).map(outcomeOf)
  assert.equal(decoded.length, 1501, 'one outcome per request, none twice')
  assert.equal(new Set(decoded.map((o) => o.requestId)).size, 1501, 'one outcome per request')
  const mine = decoded.filter((o) => o.requestId === late.requestId)
  assert.deepEqual(mine.map((o) => o.status), ['timeout'], 'exactly one outcome for the late command: its timeout')
  // The timeout did not wait for the backlog: outcomes of commands queued before the late one follow it.
  const position = decoded.findIndex((o) => o.requestId === late.requestId)
  const backlogAfter = decoded.slice(position + 1).length
  assert.ok(backlogAfter > 0, `the timeout came while the backlog was still being processed (outcome #${position} of 1501)`)
  t.diagnostic(`the timeout was outcome #${position}; ${backlogAfter} backlog outcomes came after it`)
  // Never early, by the reader's clock.
  const visibleAt = watch.seen.find(({ record }) => outcomeOf(record).requestId === late.requestId)?.seenAt ?? 0
  assert.ok(visibleAt >= (late.deadline ?? Infinity), `the timeout was visible ${(late.deadline ?? 0) - visibleAt} ms before the deadline`)
  assert.ok(!handled.includes(late.requestId), 'the expired command was not executed')
  const dead = await consume(`${s.commands}.dlq`, { count: 1 })
  assert.equal(dead[0]?.headers.get('weir.error.code')?.toString(), 'WEIR_ERR_COMMAND_EXPIRED')
})

test('a duplicate command id is dropped across a restart: the consumed-id store is restored from its changelog', async (t) => {
  const { service, handled } = await setUp(t)
  const s = service.topics
  const applicationId = uniqueName('cs-dedupe')
  const first = command('a')
  await produce([{ topic: s.commands, key: 'a', value: encodeEnvelope(first) }])
  const { runtime } = await run(t, service, applicationId)
  await consume(s.outcomes, { count: 1 })
  await runtime.stop()
  // A new worker with an empty state folder: it must learn the consumed ids from the changelog.
  await produce([
    { topic: s.commands, key: 'a', value: encodeEnvelope(first) },
    { topic: s.commands, key: 'b', value: encodeEnvelope(command('b')) },
  ])
  const second = await run(t, service, applicationId)
  await consume(s.outcomes, { count: 2 })
  await waitFor(async () => (await second.runtime.metrics()).processed >= 2, { what: 'both commands processed by the second worker' })
  // Stopped, the worker writes nothing more: reading to the end offsets sees a second outcome for 'a' however
  // late it came.
  await second.runtime.stop()
  const outcomes = (await readAll(s.outcomes)).map(outcomeOf)
  assert.deepEqual(outcomes.map((o) => (o.payload as { placed: string }).placed), ['a', 'b'])
  assert.equal(handled.filter((id) => id === first.requestId).length, 1, 'handled once')
  assert.ok((await second.runtime.metrics()).restoredRecords > 0, 'state came from the changelog')
})

test('a command costs three changelog records: its seen id, its decision, its handler\'s write', async (t) => {
  const { service } = await setUp(t)
  const s = service.topics
  const applicationId = uniqueName('cs-changelog')
  const count = 20
  // Each with a deadline (the arbiter registers it, then the result cancels it) and its own sku (one store row each).
  await produce(Array.from({ length: count }, (_, i) => ({ topic: s.commands, key: `k${i}`, value: encodeEnvelope(command(`sku-${i}`, { ttlMs: 600_000 })) })))
  const { runtime } = await run(t, service, applicationId)
  await consume(s.outcomes, { count })
  await runtime.stop()
  const { admin } = await import('../helpers/kafka.ts')
  const changelogs = (await admin().listTopics()).filter((name) => name.startsWith(`${applicationId}-`) && name.endsWith('-changelog'))
  const perTopic: Record<string, number> = {}
  for (const topic of changelogs) perTopic[topic.slice(applicationId.length + 1)] = (await readAll(topic)).length
  const total = Object.values(perTopic).reduce((a, b) => a + b, 0)
  // The dedupe's timer (the seen id), the arbiter's expiry timer (the decision; the deadline timer was set and
  // cancelled in one transaction: no record), the handler's row.
  assert.equal(total, 3 * count, JSON.stringify(perTopic))
})

test('unknown commands get an error outcome and a dead letter carrying code, origin and processor', async (t) => {
  const { service } = await setUp(t)
  const s = service.topics
  const unknown = command('x', { alias: 'teleport' })
  await produce([{ topic: s.commands, key: 'x', value: encodeEnvelope(unknown) }, { topic: s.commands, key: 'garbage', value: Buffer.from([0xc1, 0x00]) }])
  await run(t, service, uniqueName('cs-dlq'))
  const [outcome] = (await consume(s.outcomes, { count: 1 })).map(outcomeOf)
  assert.equal(outcome?.status, 'error')
  assert.equal((outcome?.payload as { code: string }).code, 'WEIR_ERR_UNKNOWN_COMMAND')
  const dead = await consume(`${s.commands}.dlq`, { count: 2 })
  const header = (r: ConsumedRecord | undefined, name: string) => r?.headers.get(name)?.toString()
  const codes = dead.map((d) => header(d, 'weir.error.code')).sort()
  assert.deepEqual(codes, ['WEIR_ERR_ENVELOPE_DECODE', 'WEIR_ERR_UNKNOWN_COMMAND'].sort())
  for (const d of dead) {
    assert.equal(header(d, 'weir.origin.topic'), s.commands)
    assert.equal(header(d, 'weir.origin.partition'), '0')
    assert.match(header(d, 'weir.origin.offset') ?? '', /^[01]$/)
  }
  const undecodable = dead.find((d) => header(d, 'weir.error.code') === 'WEIR_ERR_ENVELOPE_DECODE')
  assert.deepEqual(undecodable?.value, Buffer.from([0xc1, 0x00]), 'the raw bytes are kept')
})
