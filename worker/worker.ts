// The worker service: loads a topology module, runs it on Kafka, serves health, readiness and Prometheus
// metrics, and logs the library's diagnostics with pino.
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

import pino from 'pino'
import type { Logger } from 'pino'

import { WeirError, invalidOptions } from '../core/errors.ts'
import { describeConnection } from '../kafka/index.ts'
import type { Topology } from '../topology/define.ts'
import { createStreamRuntime } from '../topology/runtime/stream-runtime.ts'
import type { StoreOpener, StreamRuntime } from '../topology/runtime/stream-runtime.ts'
import type { WorkerConfig } from './config.ts'
import { subscribeLogging } from './logging.ts'
import { createWorkerMetrics } from './metrics.ts'

export interface Worker {
  readonly runtime: StreamRuntime
  readonly logger: Logger
  /** Port of the HTTP server, when enabled. */
  readonly httpPort: number | undefined
  stop(): Promise<void>
}

export interface TopologyModule {
  topology: Topology
  applicationId?: string
}

export async function loadTopologyModule(path: string): Promise<TopologyModule> {
  const url = pathToFileURL(isAbsolute(path) ? path : resolve(process.cwd(), path)).href
  let module: Partial<TopologyModule>
  try {
    module = (await import(url)) as Partial<TopologyModule>
  } catch (cause) {
    throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `cannot load topology module ${path}: ${(cause as Error).message}`, { cause })
  }
  const topology = module.topology
  if (topology === undefined || typeof topology.describe !== 'function' || typeof topology.sourceTopics !== 'object') {
    throw invalidOptions('worker', [`${path} must export \`topology\` made with defineTopology()`])
  }
  return { topology, ...(module.applicationId === undefined ? {} : { applicationId: module.applicationId }) }
}

export async function startWorker(config: WorkerConfig, openStore: StoreOpener): Promise<Worker> {
  const logger = pino({ level: config.logLevel, base: { service: 'weir-worker', pid: process.pid } })
  const module = await loadTopologyModule(config.topologyModule)
  const applicationId = config.applicationId ?? module.applicationId
  if (applicationId === undefined) {
    throw invalidOptions('worker', ['no application id: pass --application-id (WEIR_APPLICATION_ID) or export `applicationId` from the module'])
  }
  const runtime = createStreamRuntime({
    applicationId,
    topology: module.topology,
    brokers: config.brokers,
    ...(config.connection === undefined ? {} : { connection: config.connection }),
    replication: config.replication,
    stateDir: config.stateDir,
    openStore,
    commitIntervalMs: config.commitIntervalMs,
    commitWhenIdle: config.commitWhenIdle,
    errorPolicy: config.errorPolicy,
    sessionTimeoutMs: config.sessionTimeoutMs,
  })
  const unsubscribe = subscribeLogging(logger, applicationId)
  const metrics = createWorkerMetrics(runtime)
  let server: Server | undefined
  let httpPort: number | undefined
  if (config.httpPort >= 0) {
    server = createServer((request, response) => {
      void (async () => {
        if (request.url === '/health') {
          const ok = runtime.state() !== 'failed' && runtime.state() !== 'stopped'
          response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: runtime.state() }))
        } else if (request.url === '/ready') {
          const m = await runtime.metrics()
          const ready = m.state === 'running' && m.restoring === 0
          response
            .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
            .end(JSON.stringify({ ready, state: m.state, tasks: m.tasks, restoring: m.restoring, partitions: runtime.partitions() }))
        } else if (request.url === '/metrics') {
          response.writeHead(200, { 'content-type': metrics.contentType }).end(await metrics.render())
        } else {
          response.writeHead(404).end()
        }
      })().catch((error: unknown) => {
        logger.error({ err: error }, 'http handler failed')
        if (!response.headersSent) response.writeHead(500).end()
      })
    })
    await new Promise<void>((resolveListen, reject) => {
      server?.once('error', reject)
      server?.listen(config.httpPort, config.httpHost, () => resolveListen())
    })
    const address = server.address()
    httpPort = typeof address === 'object' && address !== null ? address.port : undefined
  }
  logger.info({ applicationId, brokers: config.brokers, kafka: describeConnection(config.connection), stateDir: config.stateDir, httpPort, topology: module.topology.describe() }, 'worker starting')
  await runtime.start()
  logger.info({ partitions: runtime.partitions() }, 'worker running')
  let stopping: Promise<void> | undefined
  return {
    runtime,
    logger,
    httpPort,
    stop() {
      stopping ??= (async () => {
        logger.info('worker stopping: finishing in-flight work, committing, leaving the group')
        await runtime.stop()
        await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())))
        unsubscribe()
        logger.info('worker stopped')
      })()
      return stopping
    },
  }
}
