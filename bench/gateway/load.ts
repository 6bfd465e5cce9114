// Gateway load test: `npm run bench:gateway -- [options]` (docs/gateway.md, "Load test").
//
// In one run, on the same broker and the same number of WebSocket connections:
//   commands:  the orders example service in --workers worker processes (`worker/cli.ts worker examples/orders/topology.ts`,
//              dedupe -> router -> handler with its RocksDB store -> deadline arbiter, two transactions per
//              command), a gateway process, and N SDK connections spread over client processes that send
//              `orders/orders/place` at a fixed total rate (open loop). End-to-end command -> result latency
//              p50/p99, results/s, and where the time goes (stages timed from the envelopes' createdAt).
//   broadcast: events produced to the service's events topic, delivered by the gateway process to every
//              subscribed connection; deliveries/s.
//   floor:     an exactly-once request/reply through the same broker at the same offered rate with nothing of weir
//              in it (floor.ts: commands produced by the bench process, Kafka's Java client consuming and answering
//              them in transactions, results read at read_committed); weir's latency is reported as a ratio to it.
//   bare uWS:  the same connections on a bare uWS server process that publishes frames of the same shape in a
//              loop: the ceiling the broadcast figure is compared with (ratio). Both use plain WebSocket clients
//              in this process that count frames without parsing them, so the ratio compares the servers.
// A human table on stdout, and with --json one JSON line last.
import { fork, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

import { SignJWT } from 'jose'

import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import { createOrdersTopics } from '../../examples/orders/create-topics.ts'
import { ORDERS_PREFIX_ENV, ordersService } from '../../examples/orders/service.ts'
import { BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL } from '../../gateway/protocol.ts'
import { createAdmin, createPartitionReader, createProducer } from '../../kafka/index.ts'
import { InfraUnavailable, createProgress, provideInfrastructure } from '../../scripts/infra/index.ts'
import { buildKafkaStreamsBaseline } from '../baselines/kafka-streams.ts'
import { runFloor } from './floor.ts'
import type { FloorResult } from './floor.ts'
import type { BareUwsMessage } from './bare-uws-process.ts'
import type { ClientMessage, ClientStart, Sample } from './client-process.ts'
import type { GatewayProcessMessage, GatewayProcessOptions } from './gateway-process.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const USAGE = `Usage: npm run bench:gateway -- [options]

  --connections <n>         WebSocket SDK connections sending commands, and broadcast receivers (default 50)
  --rate <n>                commands per second, all connections together (default 2000)
  --seconds <n>             measured seconds of commands (default 30), after --warmup-seconds (default 10: a cold
                            worker (JIT, caches) builds a backlog in its first seconds that takes about as long
                            to drain at 2,000/s; the measured window is the steady state after it); the floor
                            uses the same warm-up and window
  --client-processes <n>    processes the connections are spread over (default 2)
  --commit-interval-ms <n>  the worker's transaction commit interval (default 100, the worker's default: at 2,000/s
                            shorter intervals cost the worker more throughput than they save latency)
  --commit-when-idle <b>    the worker's commit-when-idle setting, true or false (default true, the worker's default)
  --workers <n>             orders worker processes in one consumer group, sharing the partitions (default 1)
  --fetch-max-wait-ms <n>   the gateway's live-stream fetch wait (default 200, the gateway's default)
  --command-linger-ms <n>   the gateway's command linger (default 0, the gateway's default)
  --breakdown <b>           time each stage of every command, true or false (default false: its reader decodes
                            every command and result, about 15% of a core at 2,000/s, which a run near capacity
                            cannot spare)
  --partitions <n>          partitions of the orders topics (default 3, as the demo)
  --events <n>              events for the broadcast scenario (default 2000)
  --floor <b>               run the exactly-once request/reply floor, true or false (default true; needs Java and
                            Maven for the Kafka Streams baseline jar, bench/baselines/)
  --keep-logs               keep the worker and gateway logs (the folder is printed at the end; start the run
                            with WEIR_LOG_LEVEL=debug to have the worker log every commit with its duration)
  --json                    print one JSON line last

Kafka: KAFKA_BOOTSTRAP_SERVERS when set, else a broker is started (docs/development.md).
`

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    connections: { type: 'string', default: '50' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '30' },
    'warmup-seconds': { type: 'string', default: '10' },
    'client-processes': { type: 'string', default: '2' },
    'commit-interval-ms': { type: 'string', default: '100' },
    'fetch-max-wait-ms': { type: 'string', default: '200' },
    'commit-when-idle': { type: 'string', default: 'true' },
    breakdown: { type: 'string', default: 'false' },
    'command-linger-ms': { type: 'string', default: '0' },
    'keep-logs': { type: 'boolean', default: false },
    workers: { type: 'string', default: '1' },
    partitions: { type: 'string', default: '3' },
    events: { type: 'string', default: '2000' },
    floor: { type: 'string', default: 'true' },
    help: { type: 'boolean', short: 'h', default: false },
  },
})
if (values.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}
const settings = {
  connections: Number(values.connections),
  rate: Number(values.rate),
  seconds: Number(values.seconds),
  warmupSeconds: Number(values['warmup-seconds']),
  clientProcesses: Number(values['client-processes']),
  commitIntervalMs: Number(values['commit-interval-ms']),
  fetchMaxWaitMs: Number(values['fetch-max-wait-ms']),
  commandLingerMs: Number(values['command-linger-ms']),
  partitions: Number(values.partitions),
  events: Number(values.events),
  workers: Number(values.workers),
}
const invalid = Object.entries(settings).filter(([key, n]) => !Number.isFinite(n) || n < (key === 'warmupSeconds' || key === 'fetchMaxWaitMs' || key === 'commandLingerMs' ? 0 : 1))
if (values['commit-when-idle'] !== 'true' && values['commit-when-idle'] !== 'false') invalid.push(['commitWhenIdle', Number.NaN])
if (values.breakdown !== 'true' && values.breakdown !== 'false') invalid.push(['breakdown', Number.NaN])
if (values.floor !== 'true' && values.floor !== 'false') invalid.push(['floor', Number.NaN])
const withFloor = values.floor === 'true'
if (settings.workers > settings.partitions) invalid.push(['workers (at most --partitions)', settings.workers])
const commitWhenIdle = values['commit-when-idle'] === 'true'
// The observer decodes every command and result (about 15% of a core at 2,000/s): off leaves that CPU to the system.
const withBreakdown = values.breakdown === 'true'
if (invalid.length > 0) {
  process.stderr.write(`invalid options: ${invalid.map(([k]) => k).join(', ')}\n\n${USAGE}`)
  process.exit(2)
}
settings.clientProcesses = Math.min(settings.clientProcesses, settings.connections)

const progress = createProgress('bench:gateway')
const SECRET = randomBytes(32).toString('base64url')
const TTL_MS = 30_000
process.env.LIBUS_LISTEN_EXCLUSIVE_PORT = '1'

// ---- statistics ----

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}
const round = (n: number, digits = 1) => Number(n.toFixed(digits))

/** The stages of a command, each from one timestamp to the next (epoch ms, one machine's clock). */
const STAGES = [
  ['clientToGateway', 'client -> gateway envelope (socket, auth\'d session, validation)'],
  ['gatewayToProduced', 'gateway -> command on Kafka (group-commit produce, visible to a reader)'],
  ['producedToHandler', 'command on Kafka -> handler result (worker fetch and queue, dedupe, handler, store, arbiter)'],
  ['handlerToVisible', 'handler result -> outcome visible (the worker\'s commit)'],
  ['outcomeToClient', 'outcome visible -> client (gateway fetch, frame, socket)'],
] as const
type Stage = (typeof STAGES)[number][0]
type StageStats = { p50Ms: number; p99Ms: number; meanOfSlowest1PctMs: number }

interface Results {
  connections: number
  clientProcesses: number
  targetRate: number
  commitIntervalMs: number
  commitWhenIdle: boolean
  workers: number
  fetchMaxWaitMs: number
  commandLingerMs: number
  partitions: number
  commands: number
  failed: number
  commandsPerSecond: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
  breakdown: Record<Stage, StageStats> | undefined
  events: number
  broadcastDeliveriesPerSecond: number
  bareUwsDeliveriesPerSecond: number
  broadcastToBareRatio: number
  /** The exactly-once request/reply floor at the same rate, warm-up and window (null with --floor false). */
  floor: FloorResult | null
  floorP50Ms: number | null
  floorP99Ms: number | null
  /** weir's latency ÷ the floor's (1 = no cost over the floor). */
  p50Ratio: number | null
  p90Ratio: number | null
  p99Ratio: number | null
}

// ---- child processes ----

interface Child {
  readonly name: string
  readonly process: ChildProcess
  readonly exited: Promise<number | null>
  readonly logFile: string
  tail(): string
  stop(): Promise<void>
}

function watch(name: string, child: ChildProcess, logFile: string): Child {
  const file = createWriteStream(logFile)
  let output = ''
  const onData = (chunk: Buffer) => {
    file.write(chunk)
    output = (output + chunk.toString()).slice(-32_000)
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal === null ? null : 128))))
  void exited.then(() => file.end())
  return {
    name,
    process: child,
    exited,
    logFile,
    tail: () => output.split('\n').slice(-20).join('\n'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}

function forkChild(name: string, script: string, env: Record<string, string>, dir: string): Child {
  const child = fork(join(import.meta.dirname, script), [], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  return watch(name, child, join(dir, `${name}.log`))
}

/** The first IPC message of `type` from a child, or its log tail when it exits first. */
function messageFrom<T extends { type: string }>(child: Child, type: string, timeoutMs = 120_000): Promise<T> {
  return new Promise((resolveMessage, reject) => {
    const timer = setTimeout(() => fail(`no ${type} within ${timeoutMs} ms`), timeoutMs)
    const onMessage = (message: { type: string; message?: string }) => {
      if (message.type === 'failed') fail(message.message ?? 'failed')
      if (message.type !== type) return
      cleanup()
      resolveMessage(message as T)
    }
    const onExit = (code: number | null) => fail(`exited (code ${code})`)
    const fail = (why: string) => {
      cleanup()
      reject(new Error(`the ${child.name} ${why}:\n${child.tail()}`))
    }
    const cleanup = () => {
      clearTimeout(timer)
      child.process.removeListener('message', onMessage)
      child.process.removeListener('exit', onExit)
    }
    child.process.on('message', onMessage)
    child.process.once('exit', onExit)
  })
}

/** Starts --workers worker processes in one group; resolves when together they own every partition, restored. */
async function startWorkers(brokers: readonly string[], prefix: string, dir: string): Promise<Child[]> {
  const workers: Array<{ child: Child; exitCode: number | null | undefined; port: number }> = []
  for (let i = 0; i < settings.workers; i++) {
    const spawned = spawn(
      process.execPath,
      [
        'worker/cli.ts', 'worker', 'examples/orders/topology.ts',
        '--brokers', brokers.join(','),
        '--state-dir', join(dir, `state-${i}`),
        '--http-port', '0', '--http-host', '127.0.0.1',
        '--commit-interval-ms', String(settings.commitIntervalMs),
        '--commit-when-idle', String(commitWhenIdle),
        '--session-timeout-ms', '6000',
      ],
      { cwd: ROOT, env: { ...process.env, [ORDERS_PREFIX_ENV]: prefix }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const entry = { child: watch(settings.workers === 1 ? 'worker' : `worker-${i}`, spawned, join(dir, `worker-${i}.log`)), exitCode: undefined as number | null | undefined, port: 0 }
    void entry.child.exited.then((code) => (entry.exitCode = code))
    workers.push(entry)
  }
  const deadline = Date.now() + 120_000
  for (;;) {
    let owned = 0
    let allReady = true
    for (const w of workers) {
      if (w.exitCode !== undefined) throw new Error(`${w.child.name} exited (code ${w.exitCode}) before it was ready:\n${w.child.tail()}`)
      w.port ||= Number(/"httpPort":(\d+)/.exec(w.child.tail())?.[1] ?? 0)
      const body =
        w.port > 0
          ? ((await fetch(`http://127.0.0.1:${w.port}/ready`, { signal: AbortSignal.timeout(2000) })
              .then((r) => r.json())
              .catch(() => undefined)) as { ready?: boolean; partitions?: number[] } | undefined)
          : undefined
      if (body?.ready !== true) allReady = false
      owned += body?.partitions?.length ?? 0
    }
    if (allReady && owned === settings.partitions) return workers.map((w) => w.child)
    if (Date.now() > deadline) throw new Error(`the workers did not own all ${settings.partitions} partitions within 120 s:\n${workers.map((w) => w.child.tail()).join('\n')}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

// ---- commands ----

interface CommandRun {
  samples: Sample[]
  errors: Record<string, number>
  /** Epoch ms from which samples are measured (after the warm-up). */
  measuredFrom: number
}

async function runCommands(gatewayUrl: string, dir: string): Promise<CommandRun> {
  const { connections, clientProcesses, rate, seconds, warmupSeconds } = settings
  const clients = Array.from({ length: clientProcesses }, (_, i) => forkChild(`client-${i}`, 'client-process.ts', {}, dir))
  try {
    const share = (total: number, i: number) => Math.floor(total / clientProcesses) + (i < total % clientProcesses ? 1 : 0)
    const ready = clients.map((c) => messageFrom(c, 'ready', 60_000))
    clients.forEach((c, i) => {
      const start: ClientStart = {
        type: 'start',
        url: gatewayUrl,
        secret: SECRET,
        name: `p${i}-${process.pid}`,
        connections: share(connections, i),
        rate: rate / clientProcesses,
        seconds: seconds + warmupSeconds,
        ttlMs: TTL_MS,
      }
      c.process.send(start)
    })
    await Promise.all(ready)
    progress.step(`${connections} connections open in ${clientProcesses} client processes; ${rate} commands/s for ${warmupSeconds} s warm-up + ${seconds} s`)
    const counts = clients.map(() => ({ sent: 0, done: 0, failed: 0 }))
    clients.forEach((c, i) =>
      c.process.on('message', (m: ClientMessage) => {
        if (m.type === 'progress') counts[i] = m
      }),
    )
    const reporter = setInterval(() => {
      const sum = counts.reduce((a, c) => ({ sent: a.sent + c.sent, done: a.done + c.done, failed: a.failed + c.failed }), { sent: 0, done: 0, failed: 0 })
      progress.step(`  commands sent ${sum.sent}, results ${sum.done}, failed ${sum.failed}`)
    }, 2000)
    const finished = clients.map((c) => messageFrom<Extract<ClientMessage, { type: 'done' }>>(c, 'done', (seconds + warmupSeconds) * 1000 + TTL_MS + 30_000))
    const startAt = Date.now() + 300
    for (const c of clients) c.process.send({ type: 'go', startAt })
    const results = await Promise.all(finished).finally(() => clearInterval(reporter))
    const errors: Record<string, number> = {}
    for (const r of results) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n
    return { samples: results.flatMap((r) => r.samples), errors, measuredFrom: startAt + warmupSeconds * 1000 }
  } finally {
    for (const c of clients) await c.stop()
  }
}

/**
 * Watches the commands and results topics as the gateway does (read_committed, long polls) and notes when each
 * request's record first became visible: the gateway's produce, and the commit point of the worker's transaction.
 * The envelopes' createdAt tell when the gateway and the handler made them (an ok outcome is the handler's result).
 */
function watchVisibility(brokers: readonly string[], topics: readonly string[]) {
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers: [...brokers], clientId: 'bench-observer', isolation: 'read_committed', maxWaitMs: 20 })
  const seen = new Map(topics.map((t) => [t, new Map<string, { visibleAt: number; createdAt: number }>()]))
  let stopped = false
  const started = (async () => {
    const partitions = topics.flatMap((topic) => Array.from({ length: settings.partitions }, (_, partition) => ({ topic, partition })))
    return reader.offsets(partitions, 'latest')
  })()
  const loop = (async () => {
    let positions = await started
    while (!stopped) {
      const batches = await reader.fetch(positions)
      const visibleAt = performance.timeOrigin + performance.now()
      for (const batch of batches) {
        const byRequest = seen.get(batch.topic)
        for (const record of batch.records) {
          if (record.value === null || record.value === undefined || byRequest === undefined) continue
          const envelope = decodeEnvelope(record.value)
          if (!byRequest.has(envelope.requestId)) byRequest.set(envelope.requestId, { visibleAt, createdAt: envelope.createdAt })
        }
        positions = positions.map((p) => (p.topic === batch.topic && p.partition === batch.partition ? { ...p, offset: batch.nextOffset } : p))
      }
    }
  })()
  return {
    ready: started.then(() => undefined),
    async stop() {
      stopped = true
      await loop
      await reader.close()
      return seen
    },
  }
}

function breakdown(
  measured: readonly Sample[],
  produced: Map<string, { visibleAt: number; createdAt: number }>,
  outcomes: Map<string, { visibleAt: number; createdAt: number }>,
): Record<Stage, StageStats> | undefined {
  const rows: Array<Record<Stage, number> & { total: number }> = []
  for (const [requestId, sentAt, receivedAt] of measured) {
    const command = produced.get(requestId)
    const outcome = outcomes.get(requestId)
    if (receivedAt < 0 || command === undefined || outcome === undefined) continue
    rows.push({
      clientToGateway: command.createdAt - sentAt,
      gatewayToProduced: command.visibleAt - command.createdAt,
      producedToHandler: outcome.createdAt - command.visibleAt,
      handlerToVisible: outcome.visibleAt - outcome.createdAt,
      outcomeToClient: receivedAt - outcome.visibleAt,
      total: receivedAt - sentAt,
    })
  }
  if (rows.length === 0) return undefined
  const slowest = [...rows].sort((a, b) => b.total - a.total).slice(0, Math.max(1, Math.floor(rows.length / 100)))
  const result = {} as Record<Stage, StageStats>
  for (const [stage] of STAGES) {
    const sorted = rows.map((r) => r[stage]).sort((a, b) => a - b)
    result[stage] = {
      p50Ms: round(percentile(sorted, 50)),
      p99Ms: round(percentile(sorted, 99)),
      meanOfSlowest1PctMs: round(slowest.reduce((sum, r) => sum + r[stage], 0) / slowest.length),
    }
  }
  return result
}

// ---- broadcast and the bare uWS ceiling ----

/** N plain WebSocket clients that count frames without parsing them (the same clients for both servers). */
async function countingClients(url: string, protocols: (i: number) => Promise<string[]>, onFrame: (data: string) => void): Promise<WebSocket[]> {
  return Promise.all(
    Array.from({ length: settings.connections }, async (_, i) => {
      const ws = new WebSocket(url, await protocols(i))
      ws.onmessage = (event: MessageEvent) => onFrame(event.data as string)
      await new Promise((r) => ws.addEventListener('open', r, { once: true }))
      return ws
    }),
  )
}

/** Counts event frames until `expected`; timed from the first delivery to the last (the fan-out, not the producer's first batch). */
function deliveryCounter(expected: number) {
  let delivered = 0
  let first = 0
  let done: (perSecond: number) => void = () => {}
  const finished = new Promise<number>((r) => (done = r))
  return {
    finished,
    onEvent() {
      if (delivered === 0) first = performance.now()
      delivered++
      if (delivered === expected) done(Math.round(expected / ((performance.now() - first) / 1000)))
    },
  }
}

async function benchBroadcast(brokers: readonly string[], eventsTopic: string, port: number): Promise<number> {
  const { connections, events } = settings
  const counter = deliveryCounter(events * connections)
  let subscribed = 0
  let allSubscribed: () => void = () => {}
  const ready = new Promise<void>((r) => (allSubscribed = r))
  const key = new TextEncoder().encode(SECRET)
  const now = Math.floor(Date.now() / 1000)
  const sockets = await countingClients(
    `ws://127.0.0.1:${port}/ws`,
    async (i) => [SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`listener-${i}`).setExpirationTime(now + 3600).sign(key)}`],
    (data) => {
      if (data.startsWith('{"type":"event"')) counter.onEvent()
      else if (data.startsWith('{"type":"subscribed"') && ++subscribed === connections) allSubscribed()
    },
  )
  for (const ws of sockets) ws.send(JSON.stringify({ type: 'subscribe', topic: 'orders' }))
  await ready
  const producer = createProducer({ ...kafkaSecurity(), brokers: [...brokers], clientId: 'bench-events' })
  try {
    for (let i = 0; i < events; i += 200) {
      const batch = Array.from({ length: Math.min(200, events - i) }, (_, j) => ({
        topic: eventsTopic,
        key: `o-${i + j}`,
        value: encodeEnvelope(eventEnvelope(i + j)),
      }))
      await producer.send(batch)
    }
    return await counter.finished
  } finally {
    await producer.close()
    for (const ws of sockets) ws.close()
  }
}

function eventEnvelope(n: number) {
  return createEnvelope({ kind: 'event', contextPath: 'orders', alias: 'order-placed', topicAlias: 'orders', payload: { orderId: `o-${n}`, sku: 'bench', qty: 1 } })
}

async function benchBareUws(frame: string, dir: string): Promise<number> {
  const server = forkChild('bare-uws', 'bare-uws-process.ts', { LIBUS_LISTEN_EXCLUSIVE_PORT: '1' }, dir)
  try {
    const { port } = await messageFrom<Extract<BareUwsMessage, { type: 'listening' }>>(server, 'listening')
    const counter = deliveryCounter(settings.events * settings.connections)
    const sockets = await countingClients(`ws://127.0.0.1:${port}/ws`, async () => [], (data) => {
      if (data.startsWith('{"type":"event"')) counter.onEvent()
    })
    // Every socket subscribes in its open handler, before the open frame reaches the client.
    server.process.send({ type: 'publish', frame, count: settings.events })
    const perSecond = await counter.finished
    for (const ws of sockets) ws.close()
    return perSecond
  } finally {
    await server.stop()
  }
}

// ---- the run ----

async function main(): Promise<Results> {
  const infra = await provideInfrastructure({ progress, redis: false })
  const brokers = infra.kafka.brokers
  // Built (or found cached) before anything runs: a first Maven build takes minutes.
  const classpath = withFloor
    ? await buildKafkaStreamsBaseline(progress).catch(async (error: unknown) => {
        await infra.stop()
        throw error
      })
    : undefined
  const prefix = `bench-gw-${process.pid}-${Date.now()}`
  const dir = await mkdtemp(join(tmpdir(), 'weir-bench-gateway-'))
  const children: Child[] = []
  const killOnExit = () => {
    for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL')
  }
  process.once('exit', killOnExit)
  try {
    progress.step(`creating the orders service's topics (${prefix}.*, ${settings.partitions} partitions)`)
    await createOrdersTopics({ brokers, prefix, partitions: settings.partitions })
    progress.step(
      `starting ${settings.workers} orders worker(s) (commit interval ${settings.commitIntervalMs} ms, commit when idle ${commitWhenIdle}) and the gateway (fetch wait ${settings.fetchMaxWaitMs} ms, command linger ${settings.commandLingerMs} ms)`,
    )
    const gatewayOptions: GatewayProcessOptions = { brokers, prefix, secret: SECRET, fetchMaxWaitMs: settings.fetchMaxWaitMs, commandLingerMs: settings.commandLingerMs }
    const gateway = forkChild('gateway', 'gateway-process.ts', { WEIR_BENCH_GATEWAY: JSON.stringify(gatewayOptions), LIBUS_LISTEN_EXCLUSIVE_PORT: '1' }, dir)
    children.push(gateway)
    const listening = messageFrom<Extract<GatewayProcessMessage, { type: 'listening' }>>(gateway, 'listening')
    const workers = await startWorkers(brokers, prefix, dir)
    children.push(...workers)
    const { port } = await listening
    progress.step(`worker(s) ready (all ${settings.partitions} partitions), gateway on port ${port}`)

    const topics = ordersService({ prefix }).topics
    const observer = withBreakdown ? watchVisibility(brokers, [topics.commands, topics.outcomes]) : undefined
    await observer?.ready
    const run = await runCommands(`ws://127.0.0.1:${port}/ws`, dir)
    const seen = (await observer?.stop()) ?? new Map<string, Map<string, { visibleAt: number; createdAt: number }>>()
    const measured = run.samples.filter(([, sentAt]) => sentAt >= run.measuredFrom)
    const ok = measured.filter(([, , receivedAt]) => receivedAt >= 0)
    const latencies = ok.map(([, sentAt, receivedAt]) => receivedAt - sentAt).sort((a, b) => a - b)
    const lastResult = ok.reduce((max, [, , receivedAt]) => Math.max(max, receivedAt), run.measuredFrom)
    if (Object.keys(run.errors).length > 0) progress.step(`failed commands by code: ${JSON.stringify(run.errors)}`)
    const stages = breakdown(
      measured,
      seen.get(topics.commands) ?? new Map(),
      seen.get(topics.outcomes) ?? new Map(),
    )

    progress.step(`broadcast: ${settings.events} events to ${settings.connections} connections`)
    const broadcast = await benchBroadcast(brokers, topics.events, port)
    await gateway.stop()
    for (const worker of workers) await worker.stop()

    // With weir's processes stopped, so the floor has the machine weir had.
    let floor: FloorResult | null = null
    if (classpath !== undefined) {
      floor = await runFloor({ brokers, classpath, prefix, partitions: settings.partitions, rate: settings.rate, warmupSeconds: settings.warmupSeconds, seconds: settings.seconds, fetchMaxWaitMs: settings.fetchMaxWaitMs, progress })
      progress.step(`  floor: ${floor.resultsPerSecond} results/s, p50 ${floor.p50Ms} ms, p99 ${floor.p99Ms} ms, ${floor.missing} of ${floor.commands} without a result`)
    }

    progress.step('bare uWS publish to the same number of connections')
    // A frame like the gateway's event frames to other sessions (same fields, same size): no requestId, and no
    // trace context on a stream the catalog does not mark internal (docs/protocol.md).
    const sample = eventEnvelope(0)
    const frame = JSON.stringify({ type: 'event', topic: `${prefix}.events`, partition: 0, offset: '1000', ...sample, requestId: undefined, breadcrumbs: undefined, trace: undefined })
    const bare = await benchBareUws(frame, dir)
    const p50Ms = round(percentile(latencies, 50), 2)
    const p90Ms = round(percentile(latencies, 90), 2)
    const p99Ms = round(percentile(latencies, 99), 2)
    const ratio = (weir: number, base: number | undefined) => (base === undefined || !(base > 0) ? null : round(weir / base, 2))
    return {
      connections: settings.connections,
      clientProcesses: settings.clientProcesses,
      targetRate: settings.rate,
      commitIntervalMs: settings.commitIntervalMs,
      commitWhenIdle,
      workers: settings.workers,
      fetchMaxWaitMs: settings.fetchMaxWaitMs,
      commandLingerMs: settings.commandLingerMs,
      partitions: settings.partitions,
      commands: measured.length,
      failed: measured.length - ok.length,
      commandsPerSecond: Math.round(ok.length / ((lastResult - run.measuredFrom) / 1000)),
      p50Ms,
      p90Ms,
      p99Ms,
      maxMs: round(latencies.at(-1) ?? Number.NaN, 2),
      breakdown: stages,
      events: settings.events,
      broadcastDeliveriesPerSecond: broadcast,
      bareUwsDeliveriesPerSecond: bare,
      broadcastToBareRatio: round(broadcast / bare, 2),
      floor,
      floorP50Ms: floor?.p50Ms ?? null,
      floorP99Ms: floor?.p99Ms ?? null,
      p50Ratio: ratio(p50Ms, floor?.p50Ms),
      p90Ratio: ratio(p90Ms, floor?.p90Ms),
      p99Ratio: ratio(p99Ms, floor?.p99Ms),
    }
  } catch (error) {
    for (const child of children) process.stderr.write(`--- ${child.name} log (${child.logFile}):\n${child.tail()}\n`)
    throw error
  } finally {
    for (const child of [...children].reverse()) await child.stop()
    process.removeListener('exit', killOnExit)
    const admin = createAdmin({ ...kafkaSecurity(), brokers: [...brokers], clientId: 'bench-cleanup' })
    // The service's topics, and the changelog and dead-letter topics the worker created.
    const mine = (await admin.listTopics().catch(() => [] as string[])).filter((t) => t.startsWith(prefix))
    await admin.deleteTopics(mine).catch(() => {})
    await admin.close()
    if (values['keep-logs']) progress.step(`logs kept in ${dir}`)
    else await rm(dir, { recursive: true, force: true })
    await infra.stop()
  }
}

function table(r: Results): string {
  const rows = [
    '| measure | value |',
    '| --- | ---: |',
    `| connections (client processes) | ${r.connections} (${r.clientProcesses}) |`,
    `| workers; commit interval, when idle; gateway fetch wait, command linger | ${r.workers}; ${r.commitIntervalMs} ms, ${r.commitWhenIdle ? 'yes' : 'no'}; ${r.fetchMaxWaitMs} ms, ${r.commandLingerMs} ms |`,
    `| results/s (target ${r.targetRate} commands/s) | ${r.commandsPerSecond.toLocaleString('en')} |`,
    `| command -> result p50 / p90 / p99 / max ms | ${r.p50Ms} / ${r.p90Ms} / ${r.p99Ms} / ${r.maxMs} |`,
    `| failed commands | ${r.failed} of ${r.commands} |`,
    `| broadcast deliveries/s | ${r.broadcastDeliveriesPerSecond.toLocaleString('en')} |`,
    `| bare uWS deliveries/s | ${r.bareUwsDeliveriesPerSecond.toLocaleString('en')} |`,
    `| broadcast / bare uWS | ${r.broadcastToBareRatio} |`,
  ]
  if (r.floor !== null) {
    rows.push(
      `| floor (Java client, exactly-once request/reply): results/s | ${r.floor.resultsPerSecond.toLocaleString('en')} |`,
      `| floor command -> result p50 / p90 / p99 / max ms | ${r.floor.p50Ms} / ${r.floor.p90Ms} / ${r.floor.p99Ms} / ${r.floor.maxMs} |`,
      `| floor commands without a result | ${r.floor.missing} of ${r.floor.commands} |`,
      `| weir ÷ floor at p50 / p90 / p99 | ${r.p50Ratio} / ${r.p90Ratio} / ${r.p99Ratio} |`,
    )
  }
  if (r.breakdown !== undefined) {
    rows.push('', '| stage | p50 ms | p99 ms | mean in the slowest 1% ms |', '| --- | ---: | ---: | ---: |')
    for (const [stage, label] of STAGES) {
      const s = r.breakdown[stage]
      rows.push(`| ${label} | ${s.p50Ms} | ${s.p99Ms} | ${s.meanOfSlowest1PctMs} |`)
    }
  }
  return `${rows.join('\n')}\n`
}

main().then(
  (r) => {
    process.stdout.write(table(r))
    if (values.json) process.stdout.write(`${JSON.stringify(r)}\n`)
    process.exit(0)
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof InfraUnavailable ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
