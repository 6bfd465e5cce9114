// `npm run demo`: Kafka (scripts/infra), the orders service in a worker process, the gateway process, and the
// demo page (examples/orders/demo) served with a token endpoint. Ctrl-C stops everything it started.
//
//   npm run demo -- [--port 8080] [--gateway-port 8081] [--host 127.0.0.1] [--partitions 3] [--prefix orders] [--no-open]
//
// `startDemo()` starts the worker, the gateway and the page server against given brokers; the Chromium test
// (test/demo/demo.test.ts) uses it directly.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { stripTypeScriptTypes } from 'node:module'
import { tmpdir } from 'node:os'
import { extname, join, relative, resolve, sep } from 'node:path'
import { parseArgs } from 'node:util'

import { SignJWT } from 'jose'

import { commandPath } from '../commands/catalog.ts'
import { createOrdersTopics } from '../examples/orders/create-topics.ts'
import { ORDERS_PREFIX_ENV, TOPIC_ALIAS, ordersRegistry } from '../examples/orders/service.ts'
import { startDemoFaults } from '../examples/orders/demo-faults.ts'
import type { DemoFaults } from '../examples/orders/demo-faults.ts'
import { createProgress, InfraUnavailable, provideInfrastructure } from './infra/index.ts'
import type { Progress } from './infra/index.ts'
import type { KafkaConnection } from '../kafka/index.ts'

const ROOT = resolve(import.meta.dirname, '..')
const PAGE = 'examples/orders/demo/index.html'
/** Folders whose TypeScript the page may load (types stripped on the fly): the page's script and the client SDK. */
const BROWSER_TS_ROOTS = ['examples/orders/demo/', 'gateway/', 'core/']
/** Plain JavaScript the page may load as is: msgpackr's browser ES modules (the SDK's only dependency). */
const BROWSER_JS_ROOTS = ['node_modules/msgpackr/']

export interface DemoOptions {
  brokers: readonly string[]
  /** TLS and SASL of the cluster; the worker and gateway read the same from WEIR_KAFKA_CONFIG. */
  connection?: KafkaConnection
  /** Port of the demo page (0: any free port). */
  port?: number
  /** Port of the gateway (0: any free port). */
  gatewayPort?: number
  /** Address both servers bind (default 127.0.0.1; 0.0.0.0 to open the demo to the network). */
  host?: string
  /** Topic prefix of the orders service (default `orders`). */
  prefix?: string
  partitions?: number
  progress?: Progress
  /** Milliseconds to wait for the worker and the gateway to be ready (default 120 s). */
  readyTimeoutMs?: number
  /** Aborting it while the demo starts stops what was started (Ctrl-C during start). */
  signal?: AbortSignal
}

export interface Demo {
  /** The demo page. */
  readonly url: string
  readonly gatewayUrl: string
  readonly prefix: string
  /** Log files of the worker and the gateway (deleted by stop()). */
  readonly logs: { readonly worker: string; readonly gateway: string }
  /** Files (mode 0600, in a folder only the user can open) holding this run's secrets, which the gateway reads (deleted by stop()). */
  readonly secretFiles: { readonly jwtHs256: string; readonly session: string }
  stop(): Promise<void>
}

interface Child {
  readonly name: string
  readonly process: ChildProcess
  readonly exited: Promise<number | null>
  tail(): string
  /** Resolves with the first match of `pattern` in the output. */
  match(pattern: RegExp): Promise<RegExpExecArray>
  stop(): Promise<void>
}

function startChild(name: string, args: string[], env: Record<string, string>, logFile: string): Child {
  // Its own process group: a Ctrl-C in the terminal reaches the demo only, which stops the children in order.
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const file = createWriteStream(logFile)
  let output = ''
  const waiters: Array<{ pattern: RegExp; resolve: (m: RegExpExecArray) => void }> = []
  const onData = (chunk: Buffer) => {
    file.write(chunk)
    output = (output + chunk.toString()).slice(-64_000)
    for (const waiter of [...waiters]) {
      const m = waiter.pattern.exec(output)
      if (m !== null) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(m)
      }
    }
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal === null ? null : 128))))
  void exited.then(() => file.end())
  return {
    name,
    process: child,
    exited,
    tail: () => output.split('\n').slice(-25).join('\n'),
    match(pattern) {
      const m = pattern.exec(output)
      if (m !== null) return Promise.resolve(m)
      return new Promise((r) => waiters.push({ pattern, resolve: r }))
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Waits for `ready` (polled) while watching that the child keeps running; fails with its log tail. */
async function waitReady(child: Child, what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let exitCode: number | null | undefined
  void child.exited.then((code) => (exitCode = code))
  for (;;) {
    if (exitCode !== undefined) throw new Error(`the ${child.name} exited (code ${exitCode}) before ${what}:\n${child.tail()}`)
    if (await ready().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`the ${child.name} was not ${what} within ${timeoutMs} ms:\n${child.tail()}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function httpOk(url: string, check: (body: unknown) => boolean = () => true): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
  if (!response.ok) return false
  return check(await response.json().catch(() => undefined))
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const progress = options.progress ?? createProgress('demo')
  const host = options.host ?? '127.0.0.1'
  const prefix = options.prefix ?? 'orders'
  const partitions = options.partitions ?? 3
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000
  const brokers = options.brokers.join(',')
  const hs256Secret = randomBytes(32).toString('base64url')
  const sessionSecret = randomBytes(32).toString('base64url')
  const dir = await mkdtemp(join(tmpdir(), 'weir-demo-'))
  const logs = { worker: join(dir, 'worker.log'), gateway: join(dir, 'gateway.log') }
  // Secrets reach the gateway in files, not as arguments: every local user can read a process's command line.
  // mkdtemp makes the folder 0700; the files are 0600 besides.
  const secretFiles = { jwtHs256: join(dir, 'jwt-hs256-secret'), session: join(dir, 'session-secret') }
  const children: Child[] = []
  let server: Server | undefined
  let faults: DemoFaults | undefined
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())))
      server?.closeAllConnections()
      await faults?.close().catch(() => {})
      // The gateway first (clients see a clean close), then the worker (commits, leaves its group).
      for (const child of [...children].reverse()) await child.stop()
      await rm(dir, { recursive: true, force: true })
      process.removeListener('exit', killOnExit)
    })()
    return stopping
  }
  const killOnExit = () => {
    for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL')
  }
  process.once('exit', killOnExit)
  options.signal?.addEventListener('abort', () => void stop(), { once: true })

  try {
    await writeFile(secretFiles.jwtHs256, hs256Secret, { mode: 0o600, flag: 'wx' })
    await writeFile(secretFiles.session, sessionSecret, { mode: 0o600, flag: 'wx' })
    progress.step(`creating the orders service's topics (${prefix}.*, ${partitions} partitions)`)
    await createOrdersTopics({ brokers: options.brokers, connection: options.connection, prefix, partitions })

    const env = { [ORDERS_PREFIX_ENV]: prefix, LIBUS_LISTEN_EXCLUSIVE_PORT: '1' }
    progress.step('starting the worker (examples/orders/topology.ts) and the gateway')
    const worker = startChild(
      'worker',
      [
        'worker/cli.ts', 'worker', 'examples/orders/topology.ts',
        '--brokers', brokers,
        '--state-dir', join(dir, 'state'),
        '--http-port', '0', '--http-host', '127.0.0.1',
        '--commit-interval-ms', '50',
        '--session-timeout-ms', '6000',
        '--faults', 'true',
      ],
      env,
      logs.worker,
    )
    children.push(worker)
    const gateway = startChild(
      'gateway',
      [
        'gateway/main.ts',
        '--catalog', 'examples/orders/catalog.ts',
        '--brokers', brokers,
        '--host', host,
        '--port', String(options.gatewayPort ?? 8081),
        '--jwt-hs256-secret-file', secretFiles.jwtHs256,
        '--session-secret-file', secretFiles.session,
        '--instance-id', 'demo',
      ],
      env,
      logs.gateway,
    )
    children.push(gateway)

    const workerReady = (async () => {
      const workerPort = Number((await worker.match(/"httpPort":(\d+)/))[1])
      await waitReady(
        worker,
        `ready with all ${partitions} partitions`,
        () => httpOk(`http://127.0.0.1:${workerPort}/ready`, (b) => (b as { ready?: boolean; partitions?: number[] }).ready === true && (b as { partitions: number[] }).partitions.length === partitions),
        readyTimeoutMs,
      )
      progress.step('worker ready: it owns every partition and has restored its stores')
      return workerPort
    })()
    const gatewayReady = (async () => {
      let port = 0
      const listening = gateway.match(/"port":(\d+)[^\n]*"msg":"gateway listening"/).then((m) => (port = Number(m[1])))
      await waitReady(gateway, 'listening', async () => port > 0, readyTimeoutMs)
      await listening
      await waitReady(gateway, 'ready', () => httpOk(`http://127.0.0.1:${port}/ready`), readyTimeoutMs)
      progress.step(`gateway ready on port ${port}`)
      return port
    })()
    const [workerPort, gatewayPort] = await Promise.all([workerReady, gatewayReady])
    faults = await startDemoFaults({ brokers: options.brokers, connection: options.connection, controlTopic: `${prefix}-service.faults`, metricsUrl: `http://127.0.0.1:${workerPort}/metrics` })

    const registry = ordersRegistry({ prefix })
    const config = {
      gatewayPort,
      gatewayPath: '/ws',
      topicAlias: TOPIC_ALIAS,
      commands: registry.catalog.commands.map((c) => ({ path: commandPath(c), description: c.description, defaultTtlMs: c.defaultTtlMs })),
    }
    const secret = new TextEncoder().encode(hs256Secret)
    server = createServer((request, response) => {
      handle(request, response, config, secret, faults).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' })
        response.end(String(error))
      })
    })
    const activeServer = server
    await new Promise<void>((resolveListen, reject) => {
      activeServer.once('error', reject)
      activeServer.listen(options.port ?? 8080, host, () => resolveListen())
    })
    const address = server.address()
    const pagePort = typeof address === 'object' && address !== null ? address.port : 0
    const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
    return {
      url: `http://${shownHost}:${pagePort}/`,
      gatewayUrl: `ws://${shownHost}:${gatewayPort}/ws`,
      prefix,
      logs,
      secretFiles,
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.ts': 'text/javascript; charset=utf-8' }

async function handle(request: IncomingMessage, response: ServerResponse, config: unknown, secret: Uint8Array, faults?: DemoFaults): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://demo')
  if (await faults?.handle(url, request, response)) return
  if (url.pathname === '/' && request.method === 'GET') return sendFile(response, PAGE)
  if (url.pathname === '/config.json' && request.method === 'GET') return sendJson(response, config)
  if (url.pathname === '/token' && request.method === 'POST') {
    // A demo identity provider: anyone who can load the page gets a 10-minute token for the subject `demo`.
    const now = Math.floor(Date.now() / 1000)
    const token = await new SignJWT({ roles: [] }).setProtectedHeader({ alg: 'HS256' }).setSubject('demo').setIssuedAt(now).setExpirationTime(now + 600).sign(secret)
    return sendJson(response, { token })
  }
  if (request.method === 'GET') {
    const file = resolve(ROOT, `.${decodeURIComponent(url.pathname)}`)
    const path = relative(ROOT, file).split(sep).join('/')
    const ext = extname(path)
    const allowed =
      !path.startsWith('..') &&
      ((ext === '.ts' && BROWSER_TS_ROOTS.some((r) => path.startsWith(r))) || (ext === '.js' && BROWSER_JS_ROOTS.some((r) => path.startsWith(r))))
    if (allowed) return sendFile(response, path)
  }
  response.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
}

async function sendFile(response: ServerResponse, path: string): Promise<void> {
  let body: string
  try {
    body = await readFile(resolve(ROOT, path), 'utf8')
  } catch {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
    return
  }
  // Erasable TypeScript only (the project's rule): stripping types leaves runnable JavaScript, positions kept.
  if (path.endsWith('.ts')) body = stripTypeScriptTypes(body, { mode: 'strip', sourceUrl: `/${path}` })
  response.writeHead(200, { 'content-type': CONTENT_TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body)
}

function sendJson(response: ServerResponse, value: unknown): void {
  response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(value))
}

// --- `npm run demo` -------------------------------------------------------------------------------------

const USAGE = `Usage: npm run demo -- [options]

  --port <n>           port of the demo page (default 8080; 0: any free port)
  --gateway-port <n>   port of the WebSocket gateway (default 8081; 0: any free port)
  --host <addr>        address both bind (default 127.0.0.1; 0.0.0.0 to reach the demo from other machines)
  --partitions <n>     partitions of the service's topics (default 3)
  --prefix <name>      topic prefix (default orders)
  --no-open            do not open a browser
  -h, --help           this help

Kafka: KAFKA_BOOTSTRAP_SERVERS when set, else a broker is started (docs/development.md).
`

function openBrowser(url: string, progress: Progress): void {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'linux' && (process.env.DISPLAY || process.env.WAYLAND_DISPLAY) ? 'xdg-open' : undefined
  if (opener === undefined) return
  const child = spawn(opener, [url], { stdio: 'ignore', detached: true })
  child.on('error', () => progress.step(`could not start ${opener}: open ${url} yourself`))
  child.unref()
}

async function main(): Promise<number> {
  let values
  try {
    values = parseArgs({
      options: {
        port: { type: 'string', default: '8080' },
        'gateway-port': { type: 'string', default: '8081' },
        host: { type: 'string', default: '127.0.0.1' },
        partitions: { type: 'string', default: '3' },
        prefix: { type: 'string', default: 'orders' },
        'no-open': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const numbers = { port: Number(values.port), gatewayPort: Number(values['gateway-port']), partitions: Number(values.partitions) }
  const bad = Object.entries(numbers).filter(([key, n]) => !Number.isInteger(n) || n < (key === 'partitions' ? 1 : 0) || n > 65_535)
  if (bad.length > 0 || !/^[A-Za-z0-9._-]+$/.test(values.prefix)) {
    process.stderr.write(`invalid options: ${[...bad.map(([k]) => k), ...(/^[A-Za-z0-9._-]+$/.test(values.prefix) ? [] : ['prefix'])].join(', ')}\n\n${USAGE}`)
    return 2
  }

  const progress = createProgress('demo')
  // provideInfrastructure stops the broker on a signal and exits; here the demo's processes must stop first.
  const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') }
  const infra = await provideInfrastructure({ progress, redis: false })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const listener of process.listeners(signal)) if (!before[signal].includes(listener)) process.removeListener(signal, listener)
  }
  let demo: Demo | undefined
  let signals = 0
  const aborter = new AbortController()
  const finished = new Promise<number>((resolveFinished) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signals++
      if (signals > 1) {
        progress.step(`${signal} again: exiting without waiting`)
        resolveFinished(1)
        return
      }
      progress.step(`${signal}: stopping the gateway, the worker${infra.kafka.kind === 'external' ? '' : ' and Kafka'}`)
      aborter.abort()
      void (async () => {
        await demo?.stop()
        await infra.stop()
        progress.done('stopped')
        resolveFinished(0)
      })()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  try {
    demo = await startDemo({ brokers: infra.kafka.brokers, connection: infra.connection, progress, ...numbers, host: values.host, prefix: values.prefix, signal: aborter.signal })
  } catch (error) {
    if (signals > 0) return finished
    await infra.stop()
    throw error
  }
  if (signals > 0) return finished
  progress.done(`demo ready: ${demo.url}`)
  process.stderr.write(
    [
      '',
      `  Open ${demo.url}`,
      `  (gateway ${demo.gatewayUrl}; logs ${demo.logs.worker}, ${demo.logs.gateway})`,
      '',
      '  Try: place an order and see its result and the order-placed event; cancel it; send the slow command',
      '  (2.5 s of work, 1 s TTL) and see the timeout; send a payload that breaks the schema; go offline right after',
      '  sending a slow command with a longer TTL, wait, go online, and see its result replayed on reconnect.',
      '  Ctrl-C stops everything.',
      '',
    ].join('\n'),
  )
  if (!values['no-open']) openBrowser(demo.url, progress)
  return finished
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof InfraUnavailable) process.stderr.write(`\n[weir] cannot start the demo: ${error.message}\n`)
      else process.stderr.write(`\n[weir] the demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
}
