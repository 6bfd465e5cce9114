// Graceful shutdown (docs/gateway.md, "Shutdown"): close() stops listening, answers /ready and upgrades with 503
// and commands with WEIR_ERR_CLOSED, waits up to shutdownGraceMs for commands being produced (their acks go out),
// then closes every socket with 1001. A command is held "being produced" by registering its deadline on a topic
// that does not exist yet: the producer retries until the test creates it (or the grace period ends).
import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { Agent, request } from 'node:http'
import { after, test } from 'node:test'

import { channelNames } from '../../core/diagnostics.ts'
import type { GatewayCommandMessage, GatewayConnectionMessage } from '../../core/diagnostics.ts'
import { connect } from '../../gateway/client.ts'
import type { DeadlineRegistrar } from '../../gateway/options.ts'
import type { Gateway } from '../../gateway/server.ts'
import { admin, closeAdmin, uniqueName } from '../helpers/kafka.ts'
import { waitFor, withTimeout } from '../helpers/wait.ts'
import { createGatewayTopics, openSocket, startGateway, startTestWorker, testCatalog, token } from './helpers.ts'
import type { Cleanup, TestSocket } from './helpers.ts'

after(closeAdmin)

/** Commands whose requestId starts with `stuck` also write a record to `topic`, which does not exist. */
const stuckOn =
  (topic: string): DeadlineRegistrar =>
  (command, encoded) =>
    command.requestId.startsWith('stuck') ? [{ topic, key: command.requestId, value: encoded }] : []

/** Sends a stuck command and waits until the gateway holds it in flight (it answers the next frame after it). */
async function sendStuck(socket: TestSocket, requestId: string): Promise<void> {
  socket.send({ type: 'command', path: 'orders/sales/place', requestId, payload: { orderId: 'o-stuck', qty: 1 } })
  socket.send({ type: 'unsubscribe', topic: `marker-${requestId}` })
  await socket.expect('error', (f) => f.code === 'WEIR_ERR_UNKNOWN_TOPIC' && f.message.includes(`marker-${requestId}`))
}

interface HttpAnswer {
  status: number
  body: Record<string, unknown>
  /** Whether the request went over the kept-alive connection opened before (not a new one). */
  reused: boolean
}

/** One HTTP request over `agent` (keep-alive, one socket), so it can reach a gateway that stopped listening. */
function get(agent: Agent, port: number, path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers })
    req.on('upgrade', (_res, socket) => {
      socket.destroy()
      reject(new Error('the upgrade was accepted'))
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.length > 0 ? (JSON.parse(body) as Record<string, unknown>) : {}, reused: req.reusedSocket }))
    })
    req.on('error', reject)
    req.end()
  })
}

function commandEvents(t: Cleanup, gateway: Gateway): GatewayCommandMessage[] {
  const seen: GatewayCommandMessage[] = []
  const listener = (message: unknown) => {
    const m = message as GatewayCommandMessage
    if (m.instanceId === gateway.instanceId) seen.push(m)
  }
  diagnostics.subscribe(channelNames.gatewayCommand, listener)
  t.after(() => diagnostics.unsubscribe(channelNames.gatewayCommand, listener))
  return seen
}

test('while close() drains: /ready and upgrades get 503, new commands WEIR_ERR_CLOSED (the SDK sends them again elsewhere), commands in flight are acked, then 1001', async (t) => {
  const topics = await createGatewayTopics(t)
  const catalog = testCatalog(topics)
  const worker = await startTestWorker(t, topics)
  const missing = uniqueName('gw-not-yet')
  t.after(() => admin().deleteTopics([missing]).catch(() => {}))
  // The grace period is long: what ends this drain is the stuck command completing.
  const draining = await startGateway(t, { catalog, deadlines: stuckOn(missing), shutdownGraceMs: 120_000 })
  // Started first: the producer retries a missing topic for about 9 s, and the drain must end with it created.
  const spare = await startGateway(t, { catalog })
  const commands = commandEvents(t, draining)
  let current = draining
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => agent.destroy())
  const upgrade = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }

  const before = await get(agent, draining.port, '/ready')
  assert.equal(before.status, 200)
  const raw = await openSocket(t, draining.port, { token: await token({ sub: 'alice' }) })
  const client = await connect({ url: () => `ws://127.0.0.1:${current.port}/ws`, token: () => token({ sub: 'bob' }), reconnect: { initialDelayMs: 50, maxDelayMs: 200 } })
  t.after(() => client.close())
  await sendStuck(raw, 'stuck-1')

  const closing = draining.close()
  const ready = await get(agent, draining.port, '/ready')
  assert.deepEqual({ status: ready.status, ready: ready.body.ready, state: ready.body.state, reused: ready.reused }, { status: 503, ready: false, state: 'draining', reused: true })
  assert.equal((await get(agent, draining.port, '/health')).status, 200, 'the process still serves')
  const refused = await get(agent, draining.port, '/ws', { ...upgrade, authorization: `Bearer ${await token()}` })
  assert.deepEqual({ status: refused.status, code: refused.body.code, reused: refused.reused }, { status: 503, code: 'WEIR_ERR_CLOSED', reused: true })

  // Open sockets stay open while the drain lasts; a new command is refused with WEIR_ERR_CLOSED.
  raw.send({ type: 'command', path: 'orders/sales/place', requestId: 'late-raw', payload: { orderId: 'o-late', qty: 1 } })
  assert.equal((await raw.expect('error', (f) => f.requestId === 'late-raw')).code, 'WEIR_ERR_CLOSED')
  const resent = client.send('orders/sales/place', { orderId: 'o-sdk', qty: 1 }, { requestId: 'sdk-1' })
  await waitFor(() => commands.some((m) => m.requestId === 'sdk-1' && m.outcome === 'rejected' && m.code === 'WEIR_ERR_CLOSED'), { what: 'sdk-1 refused' })
  current = spare
  assert.equal(raw.ws.readyState, WebSocket.OPEN)
  assert.equal(client.state, 'open')
  assert.equal(raw.frames.some((f) => f.type === 'ack' && f.requestId === 'stuck-1'), false, 'still being produced')

  // The stuck command completes: its ack goes out, then the sockets are closed with 1001 and close() returns.
  await admin().createTopics([{ name: missing, partitions: 1 }])
  await withTimeout(closing, 60_000, 'close() after the last command in flight completed')
  assert.equal((await raw.closed).code, 1001)
  const ackAt = raw.frames.findIndex((f) => f.type === 'ack' && f.requestId === 'stuck-1')
  assert.ok(ackAt >= 0, 'the command in flight was acked before the close')
  if (spare.port !== draining.port) {
    const fresh = await get(new Agent(), draining.port, '/ready').catch((error: NodeJS.ErrnoException) => ({ status: error.code }))
    assert.equal(fresh.status, 'ECONNREFUSED', 'it stopped listening')
  }

  // The SDK sent the refused command again on its next connection, to the other instance; it was written once.
  await worker.reply(await worker.command((c) => c.requestId === 'sdk-1'), { ok: true })
  assert.deepEqual((await resent).payload, { ok: true })
  assert.equal(worker.commands.filter((c) => c.requestId === 'sdk-1').length, 1)
  assert.equal(worker.commands.some((c) => c.requestId === 'late-raw'), false)
})

test('the grace period bounds the drain: a command still being produced when it ends gets no ack, its socket is closed with 1001', async (t) => {
  const topics = await createGatewayTopics(t)
  const never = uniqueName('gw-never')
  const gateway = await startGateway(t, { catalog: testCatalog(topics), deadlines: stuckOn(never), shutdownGraceMs: 300 })
  // What the gateway reports, in order: its command outcomes and its sockets' closes.
  const log: string[] = []
  const onCommand = (message: unknown) => {
    const m = message as GatewayCommandMessage
    if (m.instanceId === gateway.instanceId) log.push(`command ${m.requestId} ${m.outcome}`)
  }
  const onConnection = (message: unknown) => {
    const m = message as GatewayConnectionMessage
    if (m.instanceId === gateway.instanceId && m.event === 'close') log.push(`close ${m.code} ${m.reason ?? ''}`)
  }
  diagnostics.subscribe(channelNames.gatewayCommand, onCommand)
  diagnostics.subscribe(channelNames.gatewayConnection, onConnection)
  t.after(() => {
    diagnostics.unsubscribe(channelNames.gatewayCommand, onCommand)
    diagnostics.unsubscribe(channelNames.gatewayConnection, onConnection)
  })
  const socket = await openSocket(t, gateway.port, { token: await token({ sub: 'alice' }) })
  await sendStuck(socket, 'stuck-forever')
  await withTimeout(gateway.close(), 60_000, 'close() with a command that never completes')
  // The socket was closed while the command was still being produced: the grace period ended the wait (closing
  // the producer then fails the command, which nobody is left to tell).
  assert.equal(log[0], 'close 1001 shutdown', log.join('; '))
  assert.equal((await socket.closed).code, 1001)
  assert.equal(socket.frames.some((f) => f.type === 'ack'), false)
})
