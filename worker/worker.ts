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
import type { StoreOpener } from '../state/store-kinds.ts'
import type { FaultInjector } from '../processors/faults/injector.ts'
import type { RuntimeMetrics, StreamRuntime, TaskFailure, UncommittedTask } from '../topology/runtime/runtime-options.ts'
import type { WorkerConfig } from './config.ts'
import { startFaultControl } from './fault-control.ts'
import type { FaultControl } from './fault-control.ts'
import { subscribeLogging } from './logging.ts'
import { createWorkerMetrics } from './metrics.ts'

export interface Worker {
  readonly runtime: StreamRuntime
  readonly logger: Logger
  /** Port of the HTTP server, when enabled. */
  readonly httpPort: number | undefined
  /**
   * Finishes in-flight work, commits, leaves the group and closes, within the shutdown deadline
   * (`shutdownTimeoutMs`). Resolves either way; `error` (WEIR_ERR_SHUTDOWN_INCOMPLETE) says what was not committed.
   */
  stop(): Promise<StopOutcome>
}

export interface StopOutcome {
  /** Stopped within the deadline with everything committed. */
  readonly clean: boolean
  /** Tasks whose work was not committed: their next owner redoes it from the committed offsets. */
  readonly uncommitted: readonly UncommittedTask[]
  readonly error?: WeirError
}

export interface TopologyModule {
  topology: Topology
  applicationId?: string
  /** The fault injector the topology was built with (commandService({ faults })); armed only by --faults true. */
  faults?: FaultInjector
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
  const faults = module.faults
  if (faults !== undefined && (typeof faults !== 'object' || typeof faults.arm !== 'function' || typeof faults.applyRecord !== 'function')) {
    throw invalidOptions('worker', [`${path}: \`faults\` must be made with createFaultInjector()`])
  }
  return { topology, ...(module.applicationId === undefined ? {} : { applicationId: module.applicationId }), ...(faults === undefined ? {} : { faults }) }
}

export interface Readiness {
  ready: boolean
  state: RuntimeMetrics['state']
  tasks: number
  restoring: number
  /** Partitions being served. */
  partitions: number[]
  /** Partitions the group assigned to this worker (served or not). */
  assigned: number[]
  /** Tasks failing (backing off, retried) or stopped, with the partition and the reason. */
  failing: TaskFailure[]
}

/**
 * Ready: running, nothing restoring, and every assigned partition served: a failing or stopped task makes the
 * worker not ready, so a load balancer or an orchestrator sees that one of its partitions is not served.
 */
export function readiness(metrics: RuntimeMetrics, partitions: number[]): Readiness {
  const ready = metrics.state === 'running' && metrics.restoring === 0 && metrics.failures.length === 0
  return { ready, state: metrics.state, tasks: metrics.tasks, restoring: metrics.restoring, partitions, assigned: metrics.assigned, failing: metrics.failures }
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
    maxInFlight: config.maxInFlight,
    errorPolicy: config.errorPolicy,
    maxTaskFailures: config.maxTaskFailures,
    ...(config.maxMessageBytes === undefined ? {} : { maxMessageBytes: config.maxMessageBytes }),
    sessionTimeoutMs: config.sessionTimeoutMs,
    ...(config.instanceId === undefined ? {} : { groupInstanceId: config.instanceId }),
  })
  const unsubscribe = subscribeLogging(logger, applicationId)
  let faultControl: FaultControl | undefined
  if (config.faults !== undefined) {
    const injector = module.faults
    if (injector === undefined) throw invalidOptions('worker', [`--faults true: ${config.topologyModule} exports no \`faults\` (build the topology with a fault injector: docs/faults.md)`])
    for (const rule of config.faults.rules) injector.set(rule)
    injector.arm()
    const topic = config.faults.topic ?? `${applicationId}.faults`
    // Before the runtime starts: the first record processed already sees the control topic's rules.
    faultControl = await startFaultControl({ brokers: config.brokers, connection: config.connection, replication: config.replication, topic, injector })
    logger.warn({ faultsTopic: topic, rules: injector.rules() }, 'fault injection is ON: this worker injects faults (docs/faults.md)')
  }
  const metrics = createWorkerMetrics(runtime, faultControl === undefined ? undefined : module.faults)
  let server: Server | undefined
  let httpPort: number | undefined
  if (config.httpPort >= 0) {
    server = createServer((request, response) => {
      void (async () => {
        if (request.url === '/health') {
          const ok = runtime.state() !== 'failed' && runtime.state() !== 'stopped'
          response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: runtime.state() }))
        } else if (request.url === '/ready') {
          const status = readiness(await runtime.metrics(), runtime.partitions())
          response.writeHead(status.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(status))
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
  try {
    await runtime.start()
  } catch (error) {
    // The control topic's reader would keep the process alive after a failed start.
    await faultControl?.close().catch(() => {})
    throw error
  }
  logger.info({ partitions: runtime.partitions() }, 'worker running')
  let stopping: Promise<StopOutcome> | undefined
  return {
    runtime,
    logger,
    httpPort,
    stop() {
      stopping ??= (async (): Promise<StopOutcome> => {
        const timeoutMs = config.shutdownTimeoutMs
        logger.info({ shutdownTimeoutMs: timeoutMs }, 'worker stopping: finishing in-flight work, committing, leaving the group')
        const outcome = await withDeadline(runtime.stop(), timeoutMs)
        const uncommitted = runtime.uncommitted()
        await faultControl?.close()
        server?.closeAllConnections()
        await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())))
        if (outcome === 'stopped' && uncommitted.length === 0) {
          unsubscribe()
          logger.info('worker stopped')
          return { clean: true, uncommitted }
        }
        const error = incompleteStop(outcome === 'deadline' ? 'deadline' : 'commit-failed', timeoutMs, uncommitted)
        logger.error({ err: error }, error.message)
        unsubscribe()
        return { clean: false, uncommitted, error }
      })()
      return stopping
    },
  }
}

/** Waits for `work` up to `timeoutMs`; the work goes on in the background after the deadline (the process exits). */
async function withDeadline(work: Promise<void>, timeoutMs: number): Promise<'stopped' | 'deadline'> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'deadline'>((r) => {
    timer = setTimeout(() => r('deadline'), timeoutMs)
  })
  try {
    return await Promise.race([work.then(() => 'stopped' as const), deadline])
  } finally {
    clearTimeout(timer)
  }
}

function incompleteStop(reason: 'deadline' | 'commit-failed', timeoutMs: number, uncommitted: readonly UncommittedTask[]): WeirError {
  const what =
    uncommitted.length === 0
      ? 'every task had committed (the group was not left: its partitions move after the session timeout)'
      : `not committed: ${uncommitted
          .map((t) => `task ${t.taskId} (partition ${t.partition}, processed up to ${Object.entries(t.processed).map(([topic, offset]) => `${topic}@${offset}`).join(', ')})`)
          .join('; ')}; the next owner of these partitions redoes that work from their committed offsets`
  const head = reason === 'deadline' ? `the stop did not finish within its ${timeoutMs} ms shutdown deadline` : 'a final commit failed during the stop'
  return new WeirError('WEIR_ERR_SHUTDOWN_INCOMPLETE', `${head}: ${what}`, { details: { reason, timeoutMs, uncommitted } })
}
