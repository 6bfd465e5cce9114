// Harness for gateway tests: tokens, a catalog on fresh topics, gateways on port 0 (in this process or as the
// service's process), raw WebSocket clients that record every frame, and a test "worker" that answers commands
// with results. Cleanups, tokens and raw sockets live in helpers/; this file is what the tests import.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import diagnostics from 'node:diagnostics_channel'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { createCommandCatalog } from '../../commands/catalog.ts'
import type { CommandCatalog } from '../../commands/catalog.ts'
import { WeirError } from '../../core/errors.ts'
import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope, followUp } from '../../envelope/envelope.ts'
import type { Envelope, ResultStatus } from '../../envelope/envelope.ts'
import { createPartitionReader, createProducer } from '../../kafka/index.ts'
import type { KafkaProducer, PartitionReader } from '../../kafka/index.ts'
import { channelNames } from '../../core/diagnostics.ts'
import { createGateway } from '../../gateway/server.ts'
import type { Gateway } from '../../gateway/server.ts'
import type { GatewayOptions } from '../../gateway/options.ts'
import { admin, brokers, createTopics } from '../helpers/kafka.ts'
import type { Cleanup } from './helpers/cleanup.ts'
import { HS256_SECRET, SESSION_SECRET } from './helpers/tokens.ts'

process.env.LIBUS_LISTEN_EXCLUSIVE_PORT = '1'

// Defects inside the gateway (never expected) are printed, so a test that times out shows why.
diagnostics.subscribe(channelNames.gatewayError, (message) => {
  const { where, error } = message as { where: string; error: unknown }
  if (where !== 'fetch') process.stderr.write(`[gateway error] ${where}: ${error instanceof Error ? error.stack : String(error)}\n`)
})

export { cleanups } from './helpers/cleanup.ts'
export type { Cleanup } from './helpers/cleanup.ts'
export { HS256_SECRET, SESSION_SECRET, token } from './helpers/tokens.ts'
export type { TokenOptions } from './helpers/tokens.ts'
export { openRawSocket, openSocket, rejectedUpgrade } from './helpers/sockets.ts'
export type { OpenOptions, RawSocket, TestSocket } from './helpers/sockets.ts'

export interface TestTopics {
  commands: string
  results: string
  events: string
  deadlines: string
}

export async function createGatewayTopics(t: Cleanup, partitions = 2): Promise<TestTopics> {
  const [commands, results, events, deadlines] = await createTopics(
    t as never,
    { prefix: 'gw-commands', partitions },
    { prefix: 'gw-results', partitions },
    { prefix: 'gw-events', partitions },
    { prefix: 'gw-deadlines', partitions },
  )
  return { commands: commands as string, results: results as string, events: events as string, deadlines: deadlines as string }
}

export function testCatalog(topics: TestTopics): CommandCatalog {
  return createCommandCatalog({
    topics: { orders: { commands: topics.commands, results: topics.results, events: topics.events, deadlines: topics.deadlines } },
    commands: [
      {
        topicAlias: 'orders',
        contextPath: 'sales',
        alias: 'place',
        keyField: 'orderId',
        payloadSchema: {
          type: 'object',
          required: ['orderId', 'qty'],
          properties: { orderId: { type: 'string' }, qty: { type: 'integer', minimum: 1 } },
          additionalProperties: false,
        },
        maxTtlMs: 60_000,
      },
      { topicAlias: 'orders', contextPath: 'admin', alias: 'purge', payloadSchema: { type: 'object' }, roles: ['admin'] },
    ],
  })
}

export async function startGateway(t: Cleanup, options: Partial<GatewayOptions> & { catalog: CommandCatalog }): Promise<Gateway> {
  const gateway = createGateway({
    brokers: brokers(),
    auth: { hs256Secret: HS256_SECRET },
    sessionSecret: SESSION_SECRET,
    host: '127.0.0.1',
    port: 0,
    deadlines: 'off',
    fetchMaxWaitMs: 100,
    ...options,
  })
  await gateway.start()
  t.after(() => gateway.close())
  return gateway
}

/** Plays the command service: reads commands from the topic's end, answers each with a result. */
export interface TestWorker {
  /** Commands seen so far. */
  readonly commands: Envelope[]
  /** Waits for a command matching `match`. */
  command(match: (command: Envelope) => boolean, timeoutMs?: number): Promise<Envelope>
  /** Produces a result (follow-up of `command`) to the results topic. */
  reply(command: Envelope, payload: unknown, status?: ResultStatus): Promise<void>
  stop(): Promise<void>
}

export async function startTestWorker(t: Cleanup, topics: TestTopics): Promise<TestWorker> {
  const reader: PartitionReader = createPartitionReader({ brokers: brokers(), maxWaitMs: 100 })
  const producer: KafkaProducer = createProducer({ brokers: brokers(), clientId: 'gw-test-worker' })
  const count = await admin().partitionCount(topics.commands)
  const partitions = Array.from({ length: count }, (_, partition) => ({ topic: topics.commands, partition }))
  let positions = await reader.offsets(partitions, 'earliest')
  const commands: Envelope[] = []
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const batches = await reader.fetch(positions).catch(() => [])
      for (const batch of batches) {
        for (const record of batch.records) if (record.value !== undefined) commands.push(decodeEnvelope(record.value))
        positions = positions.map((p) => (p.partition === batch.partition ? { ...p, offset: batch.nextOffset } : p))
      }
    }
  })()
  const worker: TestWorker = {
    commands,
    async command(match, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = commands.find(match)
        if (found !== undefined) return found
        if (Date.now() > deadline) throw new WeirError('WEIR_ERR_TIMEOUT', `no matching command in ${timeoutMs} ms (saw ${commands.length})`)
        await new Promise((r) => setTimeout(r, 20))
      }
    },
    async reply(command, payload, status = 'ok') {
      const result = followUp(command, { kind: 'result', alias: command.alias, payload, status })
      await producer.send([{ topic: topics.results, key: command.requestId, value: encodeEnvelope(result) }])
    },
    async stop() {
      if (stopped) return
      stopped = true
      await loop
      await reader.close()
      await producer.close()
    },
  }
  t.after(() => worker.stop())
  return worker
}

/** Produces events (envelopes of kind event) to the events topic, one record each, in order on one partition. */
export async function produceEvents(topic: string, payloads: unknown[], partition = 0, perSend = 20): Promise<void> {
  const producer = createProducer({ brokers: brokers(), clientId: 'gw-test-events' })
  try {
    const records = payloads.map((payload) => ({
      topic,
      partition,
      value: encodeEnvelope(createEnvelope({ kind: 'event', contextPath: 'sales', alias: 'order-placed', topicAlias: 'orders', payload })),
    }))
    for (let i = 0; i < records.length; i += perSend) await producer.send(records.slice(i, i + perSend))
  } finally {
    await producer.close()
  }
}

export interface GatewayProcess {
  readonly port: number
  readonly child: ChildProcess
  /** stdout lines (pino JSON) so far. */
  readonly logs: string[]
  /** Resolves with the exit code, or the signal that ended it. */
  readonly exited: Promise<number | NodeJS.Signals>
}

/**
 * Runs the gateway service (gateway/main.ts) in a child process, as it runs in production: with the test catalog
 * of `topics`, or with the catalog at `catalogPath` (a module exporting `catalog`, or a JSON description).
 */
export async function spawnGateway(
  t: Cleanup,
  topics: TestTopics | undefined,
  env: Record<string, string> = {},
  options: { catalogPath?: string } = {},
): Promise<GatewayProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'weir-gw-'))
  let catalogFile = options.catalogPath
  if (catalogFile === undefined) {
    if (topics === undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'spawnGateway needs topics or a catalogPath')
    catalogFile = join(dir, 'catalog.json')
    const catalog = testCatalog(topics)
    await writeFile(catalogFile, JSON.stringify({ topics: catalog.topics, commands: catalog.commands }))
  }
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../gateway/main.ts', import.meta.url))], {
    env: {
      ...process.env,
      KAFKA_BOOTSTRAP_SERVERS: brokers().join(','),
      WEIR_GATEWAY_CATALOG: catalogFile,
      WEIR_GATEWAY_HOST: '127.0.0.1',
      WEIR_GATEWAY_PORT: '0',
      WEIR_GATEWAY_DEADLINES: 'off',
      WEIR_SESSION_SECRET: SESSION_SECRET,
      WEIR_JWT_HS256_SECRET: HS256_SECRET,
      LIBUS_LISTEN_EXCLUSIVE_PORT: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: string[] = []
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code ?? 0)))
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    await rm(dir, { recursive: true, force: true })
  })
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = ''
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) {
        logs.push(line)
        const entry = JSON.parse(line) as { msg?: string; port?: number }
        if (entry.msg === 'gateway listening' && entry.port !== undefined) resolve(entry.port)
      }
    })
    void exited.then((code) => reject(new WeirError('WEIR_ERR_INVALID_OPTIONS', `gateway process exited (${code}) before listening: ${stderr}`)))
  })
  return { port, child, logs, exited }
}
