// Gateway load generator (first part of `npm run bench:gateway`):
//   node bench/gateway/load.ts [--json] [--connections 50] [--rate 500] [--seconds 5] [--events 2000] [--partitions 4]
//
// In one run, on the same broker and the same number of WebSocket connections:
//   commands:  N SDK clients send commands at a fixed total rate; an echo worker (fetch -> result, no topology)
//              answers each; end-to-end latency command -> result through Kafka, p50/p99, and commands/s.
//   broadcast: events produced to Kafka, delivered by the gateway to every subscribed connection; deliveries/s.
//   bare uWS:  the same connections on a bare uWS app that publishes frames of the same shape in a loop: the
//              ceiling the broadcast figure is compared with (ratio). Both use plain WebSocket clients that
//              count frames without parsing them, so the ratio compares the servers.
// Clients run in this process, so they share the CPU with the gateway in every scenario alike.
// Not yet: several client processes, the real command-service worker, `npm run bench:gateway` in package.json.
import { parseArgs } from 'node:util'

import uWS from 'uWebSockets.js'

import { createCommandCatalog } from '../../commands/catalog.ts'
import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope, followUp } from '../../envelope/envelope.ts'
import { createAdmin, createPartitionReader, createProducer } from '../../kafka/index.ts'
import { connect } from '../../gateway/client.ts'
import type { GatewayClient } from '../../gateway/client.ts'
import { BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL } from '../../gateway/protocol.ts'
import { createGateway } from '../../gateway/server.ts'
import { SignJWT } from 'jose'
import { InfraUnavailable, createProgress, provideInfrastructure } from '../../scripts/infra/index.ts'

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    connections: { type: 'string', default: '50' },
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '5' },
    events: { type: 'string', default: '2000' },
    partitions: { type: 'string', default: '4' },
  },
})
const connections = Number(values.connections)
const rate = Number(values.rate)
const seconds = Number(values.seconds)
const eventCount = Number(values.events)
const partitions = Number(values.partitions)
const progress = createProgress('bench:gateway')
const SECRET = 'bench-secret-bench-secret-bench-secret-0123456789'
process.env.LIBUS_LISTEN_EXCLUSIVE_PORT = '1'

interface Results {
  connections: number
  targetRate: number
  commands: number
  commandsPerSecond: number
  p50Ms: number
  p99Ms: number
  events: number
  broadcastDeliveriesPerSecond: number
  bareUwsDeliveriesPerSecond: number
  broadcastToBareRatio: number
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

async function echoWorker(brokers: string[], commands: string, results: string) {
  const reader = createPartitionReader({ brokers, maxWaitMs: 20 })
  const producer = createProducer({ brokers, clientId: 'bench-echo' })
  let positions = await reader.offsets(
    Array.from({ length: partitions }, (_, partition) => ({ topic: commands, partition })),
    'latest',
  )
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const batches = await reader.fetch(positions)
      const out = batches.flatMap((b) =>
        b.records.map((r) => {
          const command = decodeEnvelope(r.value as Buffer)
          return { topic: results, key: command.requestId, value: encodeEnvelope(followUp(command, { kind: 'result', alias: command.alias, payload: { ok: true }, status: 'ok' })) }
        }),
      )
      if (out.length > 0) await producer.send(out)
      for (const b of batches) positions = positions.map((p) => (p.partition === b.partition ? { ...p, offset: b.nextOffset } : p))
    }
  })()
  return async () => {
    stopped = true
    await loop
    await reader.close()
    await producer.close()
  }
}

async function benchCommands(clients: GatewayClient[]): Promise<{ count: number; perSecond: number; latencies: number[] }> {
  const latencies: number[] = []
  const inFlight: Array<Promise<void>> = []
  const started = performance.now()
  const total = rate * seconds
  for (let i = 0; i < total; i++) {
    // Open loop: command i is due at started + i / rate, whatever the previous ones do.
    const due = started + (i * 1000) / rate
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    const client = clients[i % clients.length] as GatewayClient
    const sent = performance.now()
    inFlight.push(
      client.send('bench/load/ping', { n: i }, { ttlMs: 30_000 }).then(() => {
        latencies.push(performance.now() - sent)
      }),
    )
    if (i % 1000 === 0) progress.step(`  commands sent: ${i}/${total}`)
  }
  await Promise.all(inFlight)
  const elapsed = (performance.now() - started) / 1000
  return { count: total, perSecond: Math.round(total / elapsed), latencies: latencies.sort((a, b) => a - b) }
}

/** N plain WebSocket clients that count frames without parsing them (the same clients as the bare uWS ceiling). */
async function countingClients(url: string, protocols: (i: number) => Promise<string[]>, onFrame: (data: string) => void): Promise<WebSocket[]> {
  return Promise.all(
    Array.from({ length: connections }, async (_, i) => {
      const ws = new WebSocket(url, await protocols(i))
      ws.onmessage = (event: MessageEvent) => onFrame(event.data as string)
      await new Promise((r) => ws.addEventListener('open', r, { once: true }))
      return ws
    }),
  )
}

async function benchBroadcast(brokers: string[], events: string, port: number, tokenOf: (i: number) => Promise<string>): Promise<number> {
  let delivered = 0
  let subscribed = 0
  const expected = eventCount * connections
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => (done = resolve))
  let allSubscribed: () => void = () => {}
  const ready = new Promise<void>((resolve) => (allSubscribed = resolve))
  // Timed from the first delivery to the last: the gateway's fan-out, not the producer's first batch.
  let first = 0
  const sockets = await countingClients(
    `ws://127.0.0.1:${port}/ws`,
    async (i) => [SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${await tokenOf(i)}`],
    (data) => {
      if (data.startsWith('{"type":"event"')) {
        if (delivered === 0) first = performance.now()
        delivered++
        if (delivered === expected) done()
      } else if (data.startsWith('{"type":"subscribed"')) {
        subscribed++
        if (subscribed === connections) allSubscribed()
      }
    },
  )
  for (const ws of sockets) ws.send(JSON.stringify({ type: 'subscribe', topic: 'bench' }))
  await ready
  const producer = createProducer({ brokers, clientId: 'bench-events' })
  for (let i = 0; i < eventCount; i += 200) {
    const batch = Array.from({ length: Math.min(200, eventCount - i) }, (_, j) => ({
      topic: events,
      value: encodeEnvelope(createEnvelope({ kind: 'event', contextPath: 'load', alias: 'tick', topicAlias: 'bench', payload: { n: i + j } })),
    }))
    await producer.send(batch)
  }
  await finished
  const elapsed = (performance.now() - first) / 1000
  await producer.close()
  for (const ws of sockets) ws.close()
  return Math.round(expected / elapsed)
}

async function benchBareUws(frame: string): Promise<number> {
  const app = uWS.App()
  app.ws('/ws', { maxBackpressure: 16 * 1024 * 1024, open: (ws) => void ws.subscribe('b') })
  const port = await new Promise<number>((resolve) => app.listen('127.0.0.1', 0, (s) => resolve(uWS.us_socket_local_port(s as uWS.us_listen_socket))))
  let delivered = 0
  const expected = eventCount * connections
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => (done = resolve))
  let first = 0
  const sockets = await countingClients(`ws://127.0.0.1:${port}/ws`, async () => [], (data) => {
    if (!data.startsWith('{"type":"event"')) return
    if (delivered === 0) first = performance.now()
    delivered++
    if (delivered === expected) done()
  })
  for (let i = 0; i < eventCount; i++) {
    app.publish('b', frame)
    if (i % 100 === 99) await new Promise((r) => setImmediate(r))
  }
  await finished
  const elapsed = (performance.now() - first) / 1000
  for (const ws of sockets) ws.close()
  app.close()
  return Math.round(expected / elapsed)
}

async function main(): Promise<Results> {
  const infra = await provideInfrastructure({ progress, redis: false })
  const brokers = infra.kafka.brokers
  const admin = createAdmin({ brokers })
  const suffix = `${process.pid}-${Date.now()}`
  const topics = { commands: `bench-gw-commands-${suffix}`, results: `bench-gw-results-${suffix}`, events: `bench-gw-events-${suffix}` }
  try {
    await admin.createTopics(Object.values(topics).map((name) => ({ name, partitions })))
    const catalog = createCommandCatalog({
      topics: { bench: topics },
      commands: [{ topicAlias: 'bench', contextPath: 'load', alias: 'ping', payloadSchema: { type: 'object' } }],
    })
    const gateway = createGateway({
      catalog,
      brokers,
      auth: { hs256Secret: SECRET },
      sessionSecret: SECRET,
      host: '127.0.0.1',
      port: 0,
      deadlines: 'off',
      rateLimit: { ratePerSecond: 100_000 },
      maxBackpressure: 16 * 1024 * 1024,
    })
    const port = await gateway.start()
    const stopWorker = await echoWorker(brokers, topics.commands, topics.results)
    const now = Math.floor(Date.now() / 1000)
    const tokenOf = (i: number) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(`user-${i}`)
        .setExpirationTime(now + 3600)
        .sign(new TextEncoder().encode(SECRET))
    const clients = await Promise.all(
      Array.from({ length: connections }, async (_, i) => connect({ url: `ws://127.0.0.1:${port}/ws`, token: await tokenOf(i) })),
    )
    progress.step(`${connections} connections open; commands at ${rate}/s for ${seconds} s`)
    const commands = await benchCommands(clients)
    progress.step(`broadcast: ${eventCount} events to ${connections} connections`)
    for (const client of clients) client.close()
    const broadcast = await benchBroadcast(brokers, topics.events, port, tokenOf)
    await stopWorker()
    await gateway.close()
    progress.step('bare uWS publish to the same number of connections')
    // A frame like the gateway's event frames (same fields, same size).
    const sample = createEnvelope({ kind: 'event', contextPath: 'load', alias: 'tick', topicAlias: 'bench', payload: { n: 0 } })
    const bare = await benchBareUws(
      JSON.stringify({ type: 'event', topic: topics.events, partition: 0, offset: '1000', ...sample, breadcrumbs: undefined, traceparent: sample.trace?.traceparent, trace: undefined }),
    )
    return {
      connections,
      targetRate: rate,
      commands: commands.count,
      commandsPerSecond: commands.perSecond,
      p50Ms: Number(percentile(commands.latencies, 50).toFixed(2)),
      p99Ms: Number(percentile(commands.latencies, 99).toFixed(2)),
      events: eventCount,
      broadcastDeliveriesPerSecond: broadcast,
      bareUwsDeliveriesPerSecond: bare,
      broadcastToBareRatio: Number((broadcast / bare).toFixed(2)),
    }
  } finally {
    await admin.deleteTopics(Object.values(topics)).catch(() => {})
    await admin.close()
    await infra.stop()
  }
}

main().then(
  (r) => {
    const rows = [
      '| measure | value |',
      '| --- | ---: |',
      `| connections | ${r.connections} |`,
      `| commands/s (target ${r.targetRate}) | ${r.commandsPerSecond.toLocaleString('en')} |`,
      `| command -> result p50 / p99 ms | ${r.p50Ms} / ${r.p99Ms} |`,
      `| broadcast deliveries/s | ${r.broadcastDeliveriesPerSecond.toLocaleString('en')} |`,
      `| bare uWS deliveries/s | ${r.bareUwsDeliveriesPerSecond.toLocaleString('en')} |`,
      `| broadcast / bare uWS | ${r.broadcastToBareRatio} |`,
    ]
    process.stdout.write(`${rows.join('\n')}\n`)
    if (values.json) process.stdout.write(`${JSON.stringify(r)}\n`)
    process.exit(0)
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof InfraUnavailable ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
