// Channel authorization against a real broker and real WebSocket connections: the catalog's event stream
// rules (roles, a claim rule) on subscribe, on resume and on token refresh, and what event frames carry for the
// command's own session, for other sessions, and on an internal stream.
import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { after, before, test } from 'node:test'

import { SignJWT } from 'jose'

import { createCommandCatalog } from '../../commands/catalog.ts'
import { channelNames } from '../../core/diagnostics.ts'
import type { CommandCatalog } from '../../commands/catalog.ts'
import { encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope, followUp } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { connect } from '../../gateway/client.ts'
import type { EventFrame, ServerFrame } from '../../gateway/protocol.ts'
import type { Gateway } from '../../gateway/server.ts'
import type { WeirError } from '../../core/errors.ts'
import { closeAdmin, createTopics, produce } from '../helpers/kafka.ts'
import { HS256_SECRET, cleanups, createGatewayTopics, openSocket, startGateway, startTestWorker, token } from './helpers.ts'
import type { TestSocket, TestTopics, TestWorker } from './helpers.ts'

let topics: TestTopics
let audit: string
let ops: string
let tenant: string
let gateway: Gateway
let worker: TestWorker
const shared = cleanups()

function channelCatalog(): CommandCatalog {
  const base = { commands: topics.commands, results: topics.results }
  return createCommandCatalog({
    topics: {
      orders: { ...base, events: topics.events, deadlines: topics.deadlines },
      audit: { ...base, events: audit },
      ops: { ...base, events: ops },
      tenant: { ...base, events: tenant },
      broken: { ...base, events: tenant },
    },
    commands: [
      {
        topicAlias: 'orders',
        contextPath: 'sales',
        alias: 'place',
        keyField: 'orderId',
        payloadSchema: { type: 'object', required: ['orderId'], properties: { orderId: { type: 'string' } } },
      },
    ],
    eventStreams: {
      audit: { roles: ['auditor'] },
      ops: { internal: true },
      tenant: { allow: ({ claims }) => claims.tenant === 'acme' },
      broken: {
        allow: () => {
          throw new Error('a defect in the rule')
        },
      },
    },
  })
}

before(async () => {
  topics = await createGatewayTopics(shared, 1)
  ;[audit, ops, tenant] = await createTopics(
    shared as never,
    { prefix: 'gw-audit', partitions: 1 },
    { prefix: 'gw-ops', partitions: 1 },
    { prefix: 'gw-tenant', partitions: 1 },
  ) as [string, string, string]
  gateway = await startGateway(shared, { catalog: channelCatalog() })
  worker = await startTestWorker(shared, topics)
})

after(async () => {
  await shared.run()
  await closeAdmin()
})

const eventsOf = (socket: TestSocket, topic: string) => socket.frames.filter((f): f is EventFrame => f.type === 'event' && f.topic === topic)
const errorsOf = (socket: TestSocket, code: string) => socket.frames.filter((f) => f.type === 'error' && f.code === code)

/** Events that no session caused (no clientSessionId), one record each on partition 0. */
async function produceEvents(topic: string, payloads: unknown[]): Promise<void> {
  await produce(payloads.map((payload) => ({ topic, partition: 0, value: encodeEnvelope(createEnvelope({ kind: 'event', contextPath: 'x', alias: 'happened', payload })) })))
}

/**
 * Frames the gateway wrote to `socket` before this returns are all received: a frame sent now is answered
 * after them (one socket's frames are written in order), so an event that was dispatched to it has arrived.
 */
async function roundTrip(socket: TestSocket): Promise<void> {
  const before = errorsOf(socket, 'WEIR_ERR_UNKNOWN_TOPIC').length
  socket.send({ type: 'unsubscribe', topic: 'no-such-alias' })
  await socket.expect('error', (f) => f.code === 'WEIR_ERR_UNKNOWN_TOPIC' && errorsOf(socket, 'WEIR_ERR_UNKNOWN_TOPIC').indexOf(f) === before)
}

test('a protected stream: without the role FORBIDDEN and no event, with it the events arrive', async (t) => {
  const reader = await openSocket(t, gateway.port, { token: await token({ sub: 'carol', roles: ['auditor'] }) })
  const outsider = await openSocket(t, gateway.port, { token: await token({ sub: 'dave', roles: ['clerk'] }) })
  reader.send({ type: 'subscribe', topic: 'audit' })
  outsider.send({ type: 'subscribe', topic: 'audit' })
  const subscribed = await reader.expect('subscribed')
  assert.equal(subscribed.eventsTopic, audit)
  const refused = await outsider.expect('error')
  assert.equal(refused.code, 'WEIR_ERR_FORBIDDEN')
  assert.deepEqual(refused.details, { topic: 'audit' })
  assert.match(refused.message, /auditor/)

  await produceEvents(audit, [{ n: 1 }, { n: 2 }])
  await reader.expect('event', (f) => (f.payload as { n: number }).n === 2)
  assert.deepEqual(eventsOf(reader, audit).map((f) => f.payload), [{ n: 1 }, { n: 2 }])
  await roundTrip(outsider)
  assert.equal(outsider.frames.some((f) => f.type === 'event' || f.type === 'subscribed'), false)
  // A public alias on the same gateway stays open to the same subject.
  outsider.send({ type: 'subscribe', topic: 'orders' })
  await outsider.expect('subscribed', (f) => f.topic === 'orders')
})

test('resume and subscribe with offsets of a protected stream replay nothing without the role', async (t) => {
  await produceEvents(audit, [{ r: 1 }, { r: 2 }])
  const positions = [{ topic: audit, partition: 0, offset: '0' }]

  const outsider = await openSocket(t, gateway.port, { token: await token({ sub: 'erin' }) })
  outsider.send({ type: 'resume', offsets: positions })
  const refused = await outsider.expect('error', (f) => f.code === 'WEIR_ERR_FORBIDDEN')
  assert.deepEqual(refused.details, { partitions: [`${audit}[0]`] })
  assert.equal((await outsider.expect('resumed')).replayed, 0)
  outsider.send({ type: 'subscribe', topic: 'audit' })
  outsider.send({ type: 'subscribe', topic: 'audit', offsets: positions })
  await outsider.expect('error', (f) => f.code === 'WEIR_ERR_FORBIDDEN' && errorsOf(outsider, 'WEIR_ERR_FORBIDDEN').indexOf(f) === 2)
  await roundTrip(outsider)
  assert.equal(outsider.frames.some((f) => f.type === 'event' || f.type === 'subscribed' || f.type === 'gap'), false)

  // The same frames from a subject with the role replay the stream (so the refusal above is the rule's doing).
  const reader = await openSocket(t, gateway.port, { token: await token({ sub: 'erin', roles: ['auditor'] }) })
  reader.send({ type: 'resume', offsets: positions })
  await reader.expect('resumed')
  reader.send({ type: 'subscribe', topic: 'audit' })
  const subscribed = await reader.expect('subscribed')
  assert.ok(subscribed.replayed >= 2)
  assert.ok(eventsOf(reader, audit).some((f) => (f.payload as { r?: number }).r === 2))
  assert.equal(errorsOf(reader, 'WEIR_ERR_FORBIDDEN').length, 0)
})

test('a claim rule decides who subscribes; a refreshed token that fails the rule ends the subscription', async (t) => {
  const claimToken = (tenantClaim: string) =>
    new SignJWT({ tenant: tenantClaim, roles: [] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('frank')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(HS256_SECRET))
  const member = await openSocket(t, gateway.port, { token: await claimToken('acme') })
  const stranger = await openSocket(t, gateway.port, { token: await claimToken('globex') })
  member.send({ type: 'subscribe', topic: 'tenant' })
  stranger.send({ type: 'subscribe', topic: 'tenant' })
  await member.expect('subscribed')
  assert.equal((await stranger.expect('error')).code, 'WEIR_ERR_FORBIDDEN')
  await produceEvents(tenant, [{ t: 1 }])
  await member.expect('event', (f) => (f.payload as { t: number }).t === 1)

  member.send({ type: 'auth', token: await claimToken('globex') })
  await member.expect('authenticated')
  const ended = await member.expect('error', (f) => f.code === 'WEIR_ERR_FORBIDDEN')
  assert.deepEqual(ended.details, { topic: 'tenant' })
  await produceEvents(tenant, [{ t: 2 }])
  // A second subscriber that may read it sees event 2 arrive; the ended subscription does not.
  const witness = await openSocket(t, gateway.port, { token: await claimToken('acme') })
  witness.send({ type: 'subscribe', topic: 'tenant', offsets: [{ topic: tenant, partition: 0, offset: '0' }] })
  await witness.expect('event', (f) => (f.payload as { t: number }).t === 2)
  await roundTrip(member)
  assert.deepEqual(eventsOf(member, tenant).map((f) => f.payload), [{ t: 1 }])
})

test("only the command's own session gets the requestId and trace of an event; an internal stream keeps the trace", async (t) => {
  const aliceNonce = 'alice-session-nonce-0001'
  const alice = await openSocket(t, gateway.port, { token: await token({ sub: 'alice' }), session: aliceNonce })
  const aliceBinary = await openSocket(t, gateway.port, { token: await token({ sub: 'alice' }), session: aliceNonce, encoding: 'msgpack' })
  const bobNonce = 'bob-session-nonce-000001'
  const bob = await openSocket(t, gateway.port, { token: await token({ sub: 'bob' }), session: bobNonce })
  const bobBinary = await openSocket(t, gateway.port, { token: await token({ sub: 'bob' }), session: bobNonce, encoding: 'msgpack' })
  const everyone = [alice, aliceBinary, bob, bobBinary]
  const aliceSession = (await alice.expect('welcome')).sessionId
  assert.equal((await aliceBinary.expect('welcome')).sessionId, aliceSession)
  for (const socket of everyone) {
    socket.send({ type: 'subscribe', topic: 'orders' })
    socket.send({ type: 'subscribe', topic: 'ops' })
    await socket.expect('subscribed', (f) => f.topic === 'orders')
    await socket.expect('subscribed', (f) => f.topic === 'ops')
  }
  alice.send({ type: 'command', path: 'orders/sales/place', requestId: 'r-alice-own', payload: { orderId: 'o-a' } })
  bob.send({ type: 'command', path: 'orders/sales/place', requestId: 'r-bob-own', payload: { orderId: 'o-b' } })
  // The commands as the gateway wrote them: their follow-up events carry their session and requestId.
  const aliceCommand = await worker.command((c) => c.requestId === 'r-alice-own')
  const bobCommand = await worker.command((c) => c.requestId === 'r-bob-own')

  // Interleaved in one batch, so own and other frames alternate within one dispatch.
  const events = [
    followUp(aliceCommand, { kind: 'event', alias: 'placed', payload: { n: 1 } }),
    followUp(bobCommand, { kind: 'event', alias: 'placed', payload: { n: 2 } }),
    createEnvelope({ kind: 'event', contextPath: 'sales', alias: 'placed', payload: { n: 3 } }),
    followUp(aliceCommand, { kind: 'event', alias: 'placed', payload: { n: 4 } }),
    followUp(bobCommand, { kind: 'event', alias: 'placed', payload: { n: 5 } }),
  ]
  await produce([
    ...events.map((e) => ({ topic: topics.events, partition: 0, key: 'o', value: encodeEnvelope(e) })),
    ...events.map((e) => ({ topic: ops, partition: 0, key: 'o', value: encodeEnvelope(e) })),
  ])
  const byN = new Map(events.map((e) => [(e.payload as { n: number }).n, e]))
  const mine = (socket: TestSocket, e: Envelope) => (socket === alice || socket === aliceBinary ? e.requestId === 'r-alice-own' : e.requestId === 'r-bob-own')

  for (const socket of everyone) {
    for (const topic of [topics.events, ops]) {
      await socket.expect('event', (f) => f.topic === topic && (f.payload as { n: number }).n === 5)
      const frames = eventsOf(socket, topic)
      assert.deepEqual(frames.map((f) => (f.payload as { n: number }).n), [1, 2, 3, 4, 5], 'every event once, in offset order')
      const offsets = frames.map((f) => BigInt(f.offset))
      assert.ok(offsets.every((o, i) => i === 0 || o > (offsets[i - 1] as bigint)))
      for (const frame of frames) {
        const envelope = byN.get((frame.payload as { n: number }).n) as Envelope
        const label = `${topic === ops ? 'ops' : 'orders'} event ${(frame.payload as { n: number }).n} to ${socket === alice || socket === aliceBinary ? 'alice' : 'bob'}`
        if (mine(socket, envelope)) {
          assert.equal(frame.requestId, envelope.requestId, label)
          assert.equal(frame.traceparent, envelope.trace?.traceparent, label)
        } else {
          assert.equal('requestId' in frame, false, label)
          if (topic === ops) assert.equal(frame.traceparent, envelope.trace?.traceparent, label)
          else assert.equal('traceparent' in frame, false, label)
        }
        assert.equal(frame.id, envelope.id)
      }
    }
  }

  // Replayed events follow the same rule: alice's session again gets its own in full, a new session of bob nothing.
  const from = [{ topic: topics.events, partition: 0, offset: eventsOf(alice, topics.events)[0]?.offset as string }]
  const aliceAgain = await openSocket(t, gateway.port, { token: await token({ sub: 'alice' }), session: aliceNonce })
  const bobElsewhere = await openSocket(t, gateway.port, { token: await token({ sub: 'bob' }) })
  for (const socket of [aliceAgain, bobElsewhere]) {
    socket.send({ type: 'subscribe', topic: 'orders', offsets: from })
    assert.equal((await socket.expect('subscribed')).replayed, 5)
  }
  const replayed = (socket: TestSocket) => eventsOf(socket, topics.events).map((f) => [(f.payload as { n: number }).n, f.requestId ?? null, f.traceparent ?? null])
  const full = (n: number) => [n, byN.get(n)?.requestId, byN.get(n)?.trace?.traceparent]
  assert.deepEqual(replayed(aliceAgain), [full(1), [2, null, null], [3, null, null], full(4), [5, null, null]])
  assert.deepEqual(replayed(bobElsewhere), [1, 2, 3, 4, 5].map((n) => [n, null, null]))
})

test('the SDK reports a refused subscription to its onError and drops it; an allowed one delivers', async (t) => {
  const refusedWith: WeirError[] = []
  const clientErrors: WeirError[] = []
  const client = await connect({
    url: `ws://127.0.0.1:${gateway.port}/ws`,
    token: await token({ sub: 'gina', roles: ['clerk'] }),
    onError: (error) => clientErrors.push(error),
  })
  t.after(() => client.close())
  const delivered: ServerFrame[] = []
  client.subscribe('audit', (event) => delivered.push(event), { onError: (error) => refusedWith.push(error) })
  const orders: EventFrame[] = []
  client.subscribe('orders', (event) => orders.push(event))
  for (let i = 0; i < 500 && refusedWith.length === 0; i++) await new Promise((r) => setTimeout(r, 20))
  assert.equal(refusedWith[0]?.code, 'WEIR_ERR_FORBIDDEN')
  assert.deepEqual(clientErrors, [])

  await produceEvents(audit, [{ sdk: 1 }])
  await produceEvents(topics.events, [{ sdk: 2 }])
  for (let i = 0; i < 500 && orders.length === 0; i++) await new Promise((r) => setTimeout(r, 20))
  assert.deepEqual(orders.map((e) => e.payload), [{ sdk: 2 }])
  assert.deepEqual(delivered, [])
  // Dropped: a reconnect subscribes to orders again, not to audit (no second refusal).
  client.reconnect()
  await produceEvents(topics.events, [{ sdk: 3 }])
  for (let i = 0; i < 500 && orders.length < 2; i++) await new Promise((r) => setTimeout(r, 20))
  assert.deepEqual(orders.map((e) => e.payload), [{ sdk: 2 }, { sdk: 3 }])
  assert.equal(refusedWith.length, 1)
  assert.equal(client.offsets().some((o) => o.topic === audit), false)
})

test('a rule that throws refuses the subscription and is reported as a gateway error', async (t) => {
  const reported: unknown[] = []
  const listener = (message: unknown) => {
    const m = message as { instanceId: string; where: string; error: unknown }
    if (m.instanceId === gateway.instanceId && m.where === 'eventStreams.broken.allow') reported.push(m.error)
  }
  diagnostics.subscribe(channelNames.gatewayError, listener)
  t.after(() => diagnostics.unsubscribe(channelNames.gatewayError, listener))
  const socket = await openSocket(t, gateway.port, { token: await token({ sub: 'hank', roles: ['auditor'] }) })
  socket.send({ type: 'subscribe', topic: 'broken' })
  const refused = await socket.expect('error')
  assert.equal(refused.code, 'WEIR_ERR_FORBIDDEN')
  assert.deepEqual(refused.details, { topic: 'broken' })
  assert.equal((reported[0] as Error | undefined)?.message, 'a defect in the rule')
  assert.equal(socket.frames.some((f) => f.type === 'subscribed'), false)
})

test('eventStreams rules are validated with every violation at once', () => {
  const base = { commands: 'c', results: 'r', events: 'e' }
  assert.throws(
    () =>
      createCommandCatalog({
        topics: { orders: base },
        commands: [],
        eventStreams: {
          nope: {},
          orders: { roles: ['', 3 as unknown as string], allow: 'yes' as never, internal: 'no' as never },
        },
      }),
    (error: WeirError) => {
      assert.equal(error.code, 'WEIR_ERR_INVALID_OPTIONS')
      const violations = error.details?.violations as string[]
      assert.deepEqual(violations, [
        'eventStreams.nope: topic alias nope is not in topics',
        'eventStreams.orders.roles must be an array of non-empty strings',
        'eventStreams.orders.allow must be a function',
        'eventStreams.orders.internal must be a boolean',
      ])
      return true
    },
  )
  const catalog = createCommandCatalog({ topics: { orders: base, audit: base }, commands: [], eventStreams: { audit: { roles: ['auditor'], allow: ({ subject }) => subject !== 'mallory' } } })
  const who = (subject: string, roles: string[]) => ({ subject, roles, claims: {} })
  assert.equal(catalog.maySubscribe('orders', who('anyone', [])), true)
  assert.equal(catalog.maySubscribe('audit', who('carol', ['auditor'])), true)
  assert.equal(catalog.maySubscribe('audit', who('carol', ['clerk'])), false)
  assert.equal(catalog.maySubscribe('audit', who('mallory', ['auditor'])), false)
})
