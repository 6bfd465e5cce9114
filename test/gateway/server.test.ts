// The gateway against a real broker and real WebSocket clients: commands in, results and events out,
// validation, authentication, authorization and session isolation.
import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { after, before, test } from 'node:test'

import { SignJWT, exportSPKI, generateKeyPair } from 'jose'
import type { CryptoKey } from 'jose'

import { channelNames } from '../../core/diagnostics.ts'
import type { GatewayConnectionMessage } from '../../core/diagnostics.ts'

import { decodeEnvelope } from '../../envelope/codec.ts'
import { pack } from 'msgpackr'
import { closeAdmin, consume, readAll } from '../helpers/kafka.ts'
import { withTimeout } from '../helpers/wait.ts'
import {
  HS256_SECRET,
  cleanups,
  createGatewayTopics,
  openRawSocket,
  openSocket,
  produceEvents,
  rejectedUpgrade,
  startGateway,
  startTestWorker,
  testCatalog,
  token,
} from './helpers.ts'
import type { TestTopics } from './helpers.ts'
import type { Gateway } from '../../gateway/server.ts'
import type { TestWorker } from './helpers.ts'

let topics: TestTopics
let gateway: Gateway
let worker: TestWorker
const shared = cleanups()

before(async () => {
  // One set of topics, one gateway and one worker for the file: each test uses its own requestIds and sessions.
  topics = await createGatewayTopics(shared)
  gateway = await startGateway(shared, {
    catalog: testCatalog(topics),
    maxFrameBytes: 4096,
    deadlines: 'deadlines-topic',
    auth: { hs256Secret: HS256_SECRET, clockToleranceSec: 1 },
    checkpointIntervalMs: 200,
  })
  worker = await startTestWorker(shared, topics)
})

after(async () => {
  await shared.run()
  await closeAdmin()
})

test('a command is acked, produced as an envelope, and its result reaches only the sending session', async (t) => {
  const alice = await openSocket(t, gateway.port, { token: await token({ sub: 'alice' }) })
  const bob = await openSocket(t, gateway.port, { token: await token({ sub: 'bob' }) })
  const welcome = await alice.expect('welcome')
  await bob.expect('welcome')
  alice.send({ type: 'resume', offsets: [] })
  bob.send({ type: 'resume', offsets: [] })
  await alice.expect('resumed')
  await bob.expect('resumed')

  alice.send({ type: 'command', path: 'orders/sales/place', requestId: 'r-1', payload: { orderId: 'o-1', qty: 2 }, ttlMs: 5000 })
  const ack = await alice.expect('ack', (f) => f.requestId === 'r-1')
  assert.equal(ack.topic, topics.commands)
  assert.ok(ack.deadline !== undefined && ack.deadline > Date.now())

  const command = await worker.command((c) => c.requestId === 'r-1')
  assert.equal(command.kind, 'command')
  assert.equal(command.clientSessionId, welcome.sessionId)
  assert.equal(command.topicAlias, 'orders')
  assert.equal(command.contextPath, 'sales')
  assert.equal(command.alias, 'place')
  assert.deepEqual(command.payload, { orderId: 'o-1', qty: 2 })
  assert.ok(command.deadline !== undefined && command.deadline - command.createdAt === 5000)
  assert.match(command.trace?.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)

  await worker.reply(command, { placed: true })
  const result = await alice.expect('result', (f) => f.requestId === 'r-1')
  assert.equal(result.status, 'ok')
  assert.deepEqual(result.payload, { placed: true })
  assert.equal(result.topic, topics.results)
  assert.match(result.offset, /^\d+$/)

  // The deadline is registered for the TTL processor: the command envelope on the deadlines topic, keyed like the
  // command (its keyField, orderId), so it lands on the command's partition number.
  const [registration] = await consume(topics.deadlines, { until: (r) => decodeEnvelope(r.value as Buffer).requestId === 'r-1' }).then((all) => all.slice(-1))
  assert.equal(registration?.key?.toString(), 'o-1')
  assert.equal(decodeEnvelope(registration?.value as Buffer).deadline, command.deadline)

  // Bob is connected to the same gateway and gets nothing of Alice's.
  bob.send({ type: 'command', path: 'orders/sales/place', requestId: 'r-bob', payload: { orderId: 'o-2', qty: 1 } })
  await worker.reply(await worker.command((c) => c.requestId === 'r-bob'), { placed: true })
  await bob.expect('result', (f) => f.requestId === 'r-bob')
  assert.deepEqual(bob.frames.filter((f) => f.type === 'result').map((f) => (f as { requestId: string }).requestId), ['r-bob'])
})

test('the command key is the keyField of the payload; the record carries the subject', async (t) => {
  const socket = await openSocket(t, gateway.port, { token: await token({ sub: 'carol' }) })
  socket.send({ type: 'command', path: 'orders/sales/place', requestId: 'r-key', payload: { orderId: 'order-77', qty: 1 } })
  await socket.expect('ack', (f) => f.requestId === 'r-key')
  const [record] = await consume(topics.commands, { until: (r) => decodeEnvelope(r.value as Buffer).requestId === 'r-key' }).then((all) => all.slice(-1))
  assert.equal(record?.key?.toString(), 'order-77')
  assert.equal(record?.headers.get('weir.subject')?.toString(), 'carol')
})

test('the TTL is the frame\'s ttlMs, else the default, capped by the command\'s maxTtlMs, else the gateway\'s', async (t) => {
  const ttlOf = async (port: number, requestId: string, path: string, payload: unknown, ttlMs?: number) => {
    const socket = await openSocket(t, port, { token: await token({ sub: 'ttl', roles: ['admin'] }) })
    socket.send({ type: 'command', path, requestId, payload, ...(ttlMs === undefined ? {} : { ttlMs }) })
    const ack = await socket.expect('ack', (f) => f.requestId === requestId)
    const command = await worker.command((c) => c.requestId === requestId)
    assert.equal(ack.deadline, command.deadline, 'the ack tells the deadline the command carries')
    return (command.deadline as number) - command.createdAt
  }
  const place = (orderId: string) => ({ orderId, qty: 1 })
  // This file's gateway: defaults (30 s, at most 5 min); the place command's catalog entry says maxTtlMs 60 s.
  assert.equal(await ttlOf(gateway.port, 'ttl-default', 'orders/sales/place', place('t-1')), 30_000)
  assert.equal(await ttlOf(gateway.port, 'ttl-asked', 'orders/sales/place', place('t-2'), 1234), 1234)
  assert.equal(await ttlOf(gateway.port, 'ttl-spec-cap', 'orders/sales/place', place('t-3'), 600_000), 60_000)
  assert.equal(await ttlOf(gateway.port, 'ttl-gateway-cap', 'orders/admin/purge', {}, 3_600_000), 5 * 60_000)
  // A gateway's own defaultTtlMs and maxTtlMs; a command's maxTtlMs still takes precedence over the gateway's.
  const strict = await startGateway(t, { catalog: testCatalog(topics), defaultTtlMs: 1500, maxTtlMs: 2000 })
  assert.equal(await ttlOf(strict.port, 'ttl-strict-default', 'orders/admin/purge', {}), 1500)
  assert.equal(await ttlOf(strict.port, 'ttl-strict-cap', 'orders/admin/purge', {}, 10_000), 2000)
  assert.equal(await ttlOf(strict.port, 'ttl-strict-spec', 'orders/sales/place', place('t-4'), 10_000), 10_000)
})

test('unknown commands, schema violations and missing roles get error frames and nothing is produced', async (t) => {
  const socket = await openSocket(t, gateway.port)
  socket.send({ type: 'command', path: 'orders/sales/nope', requestId: 'r-unknown', payload: {} })
  const unknown = await socket.expect('error', (f) => f.requestId === 'r-unknown')
  assert.equal(unknown.code, 'WEIR_ERR_UNKNOWN_COMMAND')

  socket.send({ type: 'command', path: 'orders/sales/place', requestId: 'r-schema', payload: { orderId: 7, qty: 0, extra: true } })
  const schema = await socket.expect('error', (f) => f.requestId === 'r-schema')
  assert.equal(schema.code, 'WEIR_ERR_SCHEMA_VIOLATION')
  assert.ok(Array.isArray(schema.details?.violations) && (schema.details.violations as string[]).length >= 2, JSON.stringify(schema.details))

  socket.send({ type: 'command', path: 'orders/admin/purge', requestId: 'r-role', payload: {} })
  assert.equal((await socket.expect('error', (f) => f.requestId === 'r-role')).code, 'WEIR_ERR_FORBIDDEN')

  const admin = await openSocket(t, gateway.port, { token: await token({ sub: 'root', roles: ['admin'] }) })
  admin.send({ type: 'command', path: 'orders/admin/purge', requestId: 'r-admin', payload: {} })
  await admin.expect('ack', (f) => f.requestId === 'r-admin')

  // Everything on the commands topic now: none of the rejected commands is there.
  const written = (await readAll(topics.commands)).map((r) => decodeEnvelope(r.value as Buffer).requestId)
  assert.ok(written.includes('r-admin'))
  assert.deepEqual(written.filter((id) => ['r-unknown', 'r-schema', 'r-role'].includes(id)), [])
})

test('malformed, invalid and oversized frames get coded errors and the connection survives', async (t) => {
  const socket = await openSocket(t, gateway.port)
  await socket.expect('welcome')
  socket.sendRaw('{not json')
  socket.sendRaw(new Uint8Array([0xc1]))
  socket.sendRaw('[1,2]')
  socket.send({ type: 'launch', requestId: 'r-type' })
  socket.send({ type: 'command', requestId: 'r-fields' })
  socket.sendRaw(JSON.stringify({ type: 'command', path: 'orders/sales/place', requestId: 'r-big', payload: { orderId: 'x'.repeat(5000), qty: 1 } }))
  socket.sendRaw(pack({ type: 'command', path: 'orders/sales/place', requestId: 'r-msgpack', payload: { orderId: 'o-3', qty: 1 } }))

  // The msgpack command's ack comes after the six error frames (frames are answered in order).
  await socket.expect('ack', (f) => f.requestId === 'r-msgpack')
  const codes = socket.frames.filter((f) => f.type === 'error').map((f) => f.code)
  assert.deepEqual(codes, [
    'WEIR_ERR_FRAME_MALFORMED',
    'WEIR_ERR_FRAME_MALFORMED',
    'WEIR_ERR_FRAME_MALFORMED',
    'WEIR_ERR_FRAME_INVALID',
    'WEIR_ERR_FRAME_INVALID',
    'WEIR_ERR_FRAME_TOO_LARGE',
  ])
  const invalid = await socket.expect('error', (f) => f.requestId === 'r-fields')
  assert.ok((invalid.details?.violations as string[]).some((v) => v.startsWith('path')))
  // Still connected: the binary (msgpack) command after all that was accepted (its ack, above).
})

/** The gateway's close events, as [code, reason] per session (the reason tells a uWS drop from the spurious close of docs/gateway.md). */
function recordCloses(t: { after(fn: () => void): void }): (sessionId: string) => Array<[number | undefined, string | undefined]> {
  const closes: GatewayConnectionMessage[] = []
  const listener = (message: unknown) => {
    const m = message as GatewayConnectionMessage
    if (m.instanceId === gateway.instanceId && m.event === 'close') closes.push(m)
  }
  diagnostics.subscribe(channelNames.gatewayConnection, listener)
  t.after(() => diagnostics.unsubscribe(channelNames.gatewayConnection, listener))
  return (sessionId) => closes.filter((c) => c.sessionId === sessionId).map((c) => [c.code, c.reason])
}

test('a frame over the transport limit: uWS drops the connection (1006, no error frame, close reason "Received too big message")', async (t) => {
  const closesOf = recordCloses(t)
  const socket = await openSocket(t, gateway.port)
  const { sessionId } = await socket.expect('welcome')
  socket.sendRaw('x'.repeat(4096 * 4 + 1))
  const closed = await socket.closed
  assert.equal(closed.code, 1006)
  assert.deepEqual(socket.frames.map((f) => f.type), ['welcome'])
  assert.deepEqual(closesOf(sessionId), [[1006, 'Received too big message']])
})

test('a text frame that is not UTF-8: uWS drops the connection before the gateway reads it (no close frame, no error frame)', async (t) => {
  const closesOf = recordCloses(t)
  const raw = await openRawSocket(t, gateway.port, await token())
  const welcome = raw.frames[0]
  assert.ok(welcome?.type === 'welcome')
  let received = 0
  raw.socket.on('data', (chunk: Buffer) => (received += chunk.length))
  const ended = new Promise<void>((resolve) => raw.socket.once('close', () => resolve()))
  // A masked text frame (FIN, opcode 1) whose payload `{\xff\xfe}` is not UTF-8.
  const payload = Buffer.from([0x7b, 0xff, 0xfe, 0x7d])
  const mask = Buffer.from([1, 2, 3, 4])
  raw.socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ (mask[i % 4] as number))]))
  await ended
  // Nothing after the frame, not even a close frame: a WebSocket client reports 1006 (abnormal closure).
  assert.equal(received, 0)
  assert.deepEqual(raw.frames.map((f) => f.type), ['welcome'])
  assert.deepEqual(closesOf(welcome.sessionId), [[1006, 'Received invalid UTF-8']])
})

test('invalid, expired and missing tokens are refused at upgrade with 401 and a code', async () => {
  const wrongKey = await token({ secret: 'another-secret-another-secret-another-secret-xx' })
  const expired = await token({ expiresInSec: -120 })
  const cases: Array<[Record<string, string>, string]> = [
    [{ authorization: `Bearer ${wrongKey}` }, 'WEIR_ERR_UNAUTHENTICATED'],
    [{ authorization: `Bearer ${expired}` }, 'WEIR_ERR_TOKEN_EXPIRED'],
    [{ authorization: 'Bearer not-a-jwt' }, 'WEIR_ERR_UNAUTHENTICATED'],
    [{}, 'WEIR_ERR_UNAUTHENTICATED'],
  ]
  for (const [headers, code] of cases) {
    const response = await rejectedUpgrade(gateway.port, headers)
    assert.equal(response.status, 401, code)
    assert.equal(response.body.code, code)
  }
  const badNonce = await rejectedUpgrade(gateway.port, { authorization: `Bearer ${await token()}` }, '?session=short')
  assert.equal(badNonce.status, 400)
  assert.equal(badNonce.body.code, 'WEIR_ERR_HANDSHAKE_INVALID')
})

test('tokens checked without waiting upgrade inside the upgrade handler, others after their asynchronous check; all connect', async (t) => {
  const es = await generateKeyPair('ES256')
  const es384 = await generateKeyPair('ES384')
  const gatewayWithKeys = await startGateway(t, {
    catalog: testCatalog(topics),
    auth: {
      hs256Secret: HS256_SECRET,
      publicKeys: [
        { key: await exportSPKI(es.publicKey), algorithm: 'ES256' },
        // A CryptoKey is left to jose (asynchronous).
        { key: es384.publicKey, algorithm: 'ES384' },
      ],
    },
  })
  const opened: GatewayConnectionMessage[] = []
  const listener = (message: unknown) => {
    const m = message as GatewayConnectionMessage
    if (m.instanceId === gatewayWithKeys.instanceId && m.event === 'open') opened.push(m)
  }
  diagnostics.subscribe(channelNames.gatewayConnection, listener)
  t.after(() => diagnostics.unsubscribe(channelNames.gatewayConnection, listener))
  const now = Math.floor(Date.now() / 1000)
  const signed = (alg: string, subject: string, key: CryptoKey) => new SignJWT({}).setProtectedHeader({ alg }).setSubject(subject).setExpirationTime(now + 600).sign(key)
  const tokens = {
    'hs-user': await token({ sub: 'hs-user' }),
    'es-user': await signed('ES256', 'es-user', es.privateKey),
    'es384-user': await signed('ES384', 'es384-user', es384.privateKey),
  }
  for (const [subject, value] of Object.entries(tokens)) {
    const socket = await openSocket(t, gatewayWithKeys.port, { token: value })
    assert.equal((await socket.expect('welcome')).subject, subject)
  }
  // (A socket upgraded asynchronously may have been opened twice: openSocket reconnects after the uWS defect.)
  const ways = (subject: string) => [...new Set(opened.filter((m) => m.subject === subject).map((m) => m.upgrade))]
  assert.deepEqual(ways('hs-user'), ['sync'])
  assert.deepEqual(ways('es-user'), ['sync'])
  assert.deepEqual(ways('es384-user'), ['async'])
})

test('a session id is bound to its subject: the same nonce under another subject is another session', async (t) => {
  const nonce = 'shared-nonce-0123456789'
  const alice = await openSocket(t, gateway.port, { token: await token({ sub: 'alice' }), session: nonce })
  const mallory = await openSocket(t, gateway.port, { token: await token({ sub: 'mallory' }), session: nonce, tokenIn: 'query' })
  const aliceWelcome = await alice.expect('welcome')
  const malloryWelcome = await mallory.expect('welcome')
  assert.equal(aliceWelcome.sessionNonce, nonce)
  assert.notEqual(aliceWelcome.sessionId, malloryWelcome.sessionId)
  // Alice again with the same nonce (a reconnect): the same session.
  const again = await openSocket(t, gateway.port, { token: await token({ sub: 'alice' }), session: nonce })
  assert.equal((await again.expect('welcome')).sessionId, aliceWelcome.sessionId)

  for (const socket of [alice, again, mallory]) {
    socket.send({ type: 'resume', offsets: [] })
    await socket.expect('resumed')
  }
  alice.send({ type: 'command', path: 'orders/sales/place', requestId: 'r-secret', payload: { orderId: 'o-s', qty: 1 } })
  await worker.reply(await worker.command((c) => c.requestId === 'r-secret'), { secret: 42 })
  await alice.expect('result', (f) => f.requestId === 'r-secret')
  await again.expect('result', (f) => f.requestId === 'r-secret')
  // Mallory's socket saw a later result of her own, but never Alice's.
  mallory.send({ type: 'command', path: 'orders/sales/place', requestId: 'r-mallory', payload: { orderId: 'o-x', qty: 1 } })
  await worker.reply(await worker.command((c) => c.requestId === 'r-mallory'), {})
  await mallory.expect('result', (f) => f.requestId === 'r-mallory')
  assert.equal(mallory.frames.some((f) => f.type === 'result' && f.requestId === 'r-secret'), false)
})

test('checkpoints move a live session past other sessions\' results, so a later resume need not scan them', async (t) => {
  const idle = await openSocket(t, gateway.port, { token: await token({ sub: 'idle' }) })
  const busy = await openSocket(t, gateway.port, { token: await token({ sub: 'busy' }) })
  idle.send({ type: 'resume', offsets: [] })
  const start = await idle.expect('resumed')
  for (const n of [1, 2, 3]) {
    busy.send({ type: 'command', path: 'orders/sales/place', requestId: `busy-${n}`, payload: { orderId: `b-${n}`, qty: 1 } })
    await worker.reply(await worker.command((c) => c.requestId === `busy-${n}`), {})
    await busy.expect('result', (f) => f.requestId === `busy-${n}`)
  }
  const total = (positions: readonly { offset: string }[]) => positions.reduce((sum, p) => sum + BigInt(p.offset), 0n)
  const checkpoint = await idle.expect('checkpoint', (f) => total(f.positions) >= total(start.positions) + 3n)
  assert.equal(checkpoint.positions.length, 2)
  assert.equal(idle.frames.some((f) => f.type === 'result'), false)
})

test('events are broadcast to the subscribers of their topic alias, in JSON and msgpack', async (t) => {
  const json = await openSocket(t, gateway.port)
  const binary = await openSocket(t, gateway.port, { encoding: 'msgpack' })
  const bystander = await openSocket(t, gateway.port)
  json.send({ type: 'subscribe', topic: 'orders' })
  binary.send({ type: 'subscribe', topic: 'orders' })
  bystander.send({ type: 'subscribe', topic: 'nope' })
  const subscribed = await json.expect('subscribed')
  assert.equal(subscribed.eventsTopic, topics.events)
  assert.equal(subscribed.positions.length, 2)
  await binary.expect('subscribed')
  assert.equal((await bystander.expect('error')).code, 'WEIR_ERR_UNKNOWN_TOPIC')

  await produceEvents(topics.events, [{ n: 1 }, { n: 2 }])
  for (const socket of [json, binary]) {
    const second = await socket.expect('event', (f) => (f.payload as { n: number }).n === 2)
    assert.equal(second.topicAlias, 'orders')
    assert.equal(second.topic, topics.events)
    const events = socket.frames.filter((f) => f.type === 'event').map((f) => (f as { payload: unknown }).payload)
    assert.deepEqual(events, [{ n: 1 }, { n: 2 }])
  }
  assert.equal(bystander.frames.some((f) => f.type === 'event'), false)

  json.send({ type: 'unsubscribe', topic: 'orders' })
  await json.expect('unsubscribed')
  await produceEvents(topics.events, [{ n: 3 }])
  await binary.expect('event', (f) => (f.payload as { n: number }).n === 3)
  assert.equal(json.frames.filter((f) => f.type === 'event').length, 2)
})

test('a token refresh over the open socket keeps the connection; another subject is refused', async (t) => {
  const socket = await openSocket(t, gateway.port, { token: await token({ sub: 'dave', expiresInSec: 60 }) })
  const welcome = await socket.expect('welcome')
  socket.send({ type: 'auth', token: await token({ sub: 'dave', expiresInSec: 3600, roles: ['admin'] }) })
  const refreshed = await socket.expect('authenticated')
  assert.ok((refreshed.expiresAt ?? 0) > (welcome.expiresAt ?? 0))
  // The new roles apply at once.
  socket.send({ type: 'command', path: 'orders/admin/purge', requestId: 'r-after-refresh', payload: {} })
  await socket.expect('ack', (f) => f.requestId === 'r-after-refresh')
  socket.send({ type: 'auth', token: await token({ sub: 'eve' }) })
  assert.equal((await socket.expect('error', (f) => f.code === 'WEIR_ERR_FORBIDDEN')).code, 'WEIR_ERR_FORBIDDEN')
})

test('an auth frame with a bad token gets an error frame; the connection and its current token (and roles) stay', async (t) => {
  const socket = await openSocket(t, gateway.port, { token: await token({ sub: 'grace' }) })
  await socket.expect('welcome')
  const forged = await token({ sub: 'grace', roles: ['admin'], secret: 'another-secret-another-secret-another-secret-xx' })
  const cases: Array<[string, string]> = [
    [forged, 'WEIR_ERR_UNAUTHENTICATED'],
    ['not-a-jwt', 'WEIR_ERR_UNAUTHENTICATED'],
    [await token({ sub: 'grace', expiresInSec: -120 }), 'WEIR_ERR_TOKEN_EXPIRED'],
  ]
  for (const [bad, code] of cases) {
    const before = socket.frames.length
    socket.send({ type: 'auth', token: bad })
    const error = await socket.expect('error', (f) => socket.frames.indexOf(f) >= before)
    assert.equal(error.code, code)
  }
  assert.equal(socket.frames.some((f) => f.type === 'authenticated'), false)
  // The forged token's roles did not apply; the connection still works under its current token.
  socket.send({ type: 'command', path: 'orders/admin/purge', requestId: 'r-forged', payload: {} })
  assert.equal((await socket.expect('error', (f) => f.requestId === 'r-forged')).code, 'WEIR_ERR_FORBIDDEN')
  socket.send({ type: 'command', path: 'orders/sales/place', requestId: 'r-after-bad-auth', payload: { orderId: 'o-g', qty: 1 } })
  await socket.expect('ack', (f) => f.requestId === 'r-after-bad-auth')
  assert.equal(socket.ws.readyState, WebSocket.OPEN)
})

test('a connection whose token expires is closed with 4001 after an error frame', async (t) => {
  // Valid for the upgrade even on a slow machine (a few seconds), expired soon after.
  const socket = await openSocket(t, gateway.port, { token: await token({ sub: 'frank', expiresInSec: 4 }) })
  await socket.expect('welcome')
  const closed = await withTimeout(socket.closed, 30_000, 'the gateway to close the connection of an expired token')
  assert.equal(closed.code, 4001)
  assert.ok(socket.frames.some((f) => f.type === 'error' && f.code === 'WEIR_ERR_TOKEN_EXPIRED'))
})

test('the rate limit answers excess frames with an error frame', async (t) => {
  const socket = await openSocket(t, gateway.port)
  await socket.expect('welcome')
  for (let i = 0; i < 450; i++) socket.send({ type: 'unsubscribe', topic: 'orders' })
  const limited = await socket.expect('error', (f) => f.code === 'WEIR_ERR_RATE_LIMITED')
  assert.ok((limited.details?.retryAfterMs as number) > 0)
})

test('health, readiness and metrics over HTTP', async () => {
  const base = `http://127.0.0.1:${gateway.port}`
  assert.equal((await fetch(`${base}/health`)).status, 200)
  const ready = await fetch(`${base}/ready`)
  assert.equal(ready.status, 200)
  assert.equal(((await ready.json()) as { ready: boolean }).ready, true)
  const metrics = await (await fetch(`${base}/metrics`)).text()
  assert.match(metrics, /weir_gateway_commands_total\{outcome="accepted",gateway_instance="[^"]+"\} \d+/)
  assert.match(metrics, /weir_gateway_frame_errors_total\{code="WEIR_ERR_UNKNOWN_COMMAND"/)
  assert.equal((await fetch(`${base}/nothing`)).status, 404)
})
