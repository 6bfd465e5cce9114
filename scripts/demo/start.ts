// startDemo(): the orders service's topics, the worker and the gateway as child processes, and the page server,
// against given brokers; stop() stops them in order and deletes the run's folder (logs, secrets).
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { commandPath } from '../../commands/catalog.ts'
import { createSagaExampleTopics } from '../../examples/saga/create-topics.ts'
import { ORDERS_PREFIX_ENV, TOPIC_ALIAS, ordersRegistry } from '../../examples/orders/service.ts'
import type { KafkaConnection } from '../../kafka/index.ts'
import { createProgress } from '../infra/index.ts'
import type { Progress } from '../infra/index.ts'
import { httpOk, startChild, waitReady } from './children.ts'
import type { Child } from './children.ts'
import { createPageServer } from './page-server.ts'
import { startDemoFaults } from '../../examples/orders/demo-faults.ts'
import type { DemoFaults } from '../../examples/orders/demo-faults.ts'

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
    await createSagaExampleTopics({ brokers: options.brokers, connection: options.connection, prefix, partitions })

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
    // The saga example (examples/saga): payment, inventory and shipping services and the order saga, one worker each.
    for (const service of ['payment', 'inventory', 'shipping', 'saga']) {
      const args = ['worker/cli.ts', 'worker', 'examples/saga/topology.ts', '--brokers', brokers, '--state-dir', join(dir, `state-${service}`), '--http-port', '0', '--http-host', '127.0.0.1', '--commit-interval-ms', '50', '--session-timeout-ms', '6000']
      children.push(startChild(`saga-${service}`, args, { ...env, WEIR_SAGA_SERVICE: service }, join(dir, `${service}.log`)))
    }
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
    server = createPageServer(config, secret, faults)
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
