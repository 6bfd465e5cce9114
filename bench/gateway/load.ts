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
// Its parts: children.ts (worker and helper processes), stages.ts (the latency breakdown), broadcast.ts
// (broadcast and the bare uWS ceiling), results.ts (the report), floor.ts (the request/reply floor).
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { createOrdersTopics } from '../../examples/orders/create-topics.ts'
import { ordersService } from '../../examples/orders/service.ts'
import { createAdmin } from '../../kafka/index.ts'
import { InfraUnavailable, createProgress, provideInfrastructure } from '../../scripts/infra/index.ts'
import { buildKafkaStreamsBaseline } from '../baselines/kafka-streams.ts'
import { benchBareUws, benchBroadcast, eventEnvelope } from './broadcast.ts'
import { forkChild, messageFrom, startWorkers } from './children.ts'
import type { Child } from './children.ts'
import type { ClientMessage, ClientStart, Sample } from './client-process.ts'
import { runFloor } from './floor.ts'
import type { FloorResult } from './floor.ts'
import type { GatewayProcessMessage, GatewayProcessOptions } from './gateway-process.ts'
import { table } from './results.ts'
import type { Results } from './results.ts'
import { breakdown, percentile, round, watchVisibility } from './stages.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

/** The floor loop tuned for latency as a Java user would (bench/baselines/README.md, "The request/reply floor"). */
const FLOOR_PRODUCER_CONFIG = 'retry.backoff.ms=5'

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
  --floor-producer-config <s> settings over the Java producer's defaults in the floor loop (default
                            ${FLOOR_PRODUCER_CONFIG}: CONCURRENT_TRANSACTIONS, which back-to-back transactions meet
                            while the previous markers are written, is retried after retry.backoff.ms, 100 ms by
                            default, which would put 100-200 ms into the floor's tail; weir's adapter retries it
                            after 2, 4, 8 ms. bench/baselines/README.md)
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
    'floor-producer-config': { type: 'string', default: FLOOR_PRODUCER_CONFIG },
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
    const workers = await startWorkers(brokers, prefix, dir, { workers: settings.workers, partitions: settings.partitions, commitIntervalMs: settings.commitIntervalMs, commitWhenIdle })
    children.push(...workers)
    const { port } = await listening
    progress.step(`worker(s) ready (all ${settings.partitions} partitions), gateway on port ${port}`)

    const topics = ordersService({ prefix }).topics
    const observer = withBreakdown ? watchVisibility(brokers, [topics.commands, topics.outcomes], settings.partitions) : undefined
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
    const broadcast = await benchBroadcast(brokers, topics.events, port, settings, SECRET)
    await gateway.stop()
    for (const worker of workers) await worker.stop()

    // With weir's processes stopped, so the floor has the machine weir had.
    let floor: FloorResult | null = null
    if (classpath !== undefined) {
      floor = await runFloor({ brokers, classpath, prefix, partitions: settings.partitions, rate: settings.rate, warmupSeconds: settings.warmupSeconds, seconds: settings.seconds, fetchMaxWaitMs: settings.fetchMaxWaitMs, javaProducerConfig: String(values['floor-producer-config']), progress })
      progress.step(`  floor: ${floor.resultsPerSecond} results/s, p50 ${floor.p50Ms} ms, p99 ${floor.p99Ms} ms, ${floor.missing} of ${floor.commands} without a result`)
    }

    progress.step('bare uWS publish to the same number of connections')
    // A frame like the gateway's event frames to other sessions (same fields, same size): no requestId, and no
    // trace context on a stream the catalog does not mark internal (docs/protocol.md).
    const sample = eventEnvelope(0)
    const frame = JSON.stringify({ type: 'event', topic: `${prefix}.events`, partition: 0, offset: '1000', ...sample, requestId: undefined, breadcrumbs: undefined, trace: undefined })
    const bare = await benchBareUws(frame, dir, settings)
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
