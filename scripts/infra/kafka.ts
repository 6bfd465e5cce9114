// Provides a Kafka broker for tests, the demo and the benchmarks, in this order:
//   1. KAFKA_BOOTSTRAP_SERVERS, when set (nothing is started or stopped);
//   2. testcontainers, when a Docker engine answers;
//   3. a local single-node KRaft broker (Apache Kafka from Maven Central jars, Java 17+), formatted in a temp
//      dir, health-checked, stopped on exit. Jars are cached under $WEIR_CACHE_DIR (default ~/.cache/weir).
import { execFile, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

import { createAdmin, isSecurityError, kafkaFromEnvironment } from '../../kafka/index.ts'
import type { KafkaConnection } from '../../kafka/index.ts'
import { InfraUnavailable, type Progress } from './progress.ts'
import { SECURE_PREFIX, grantWeirAcls, makeSecureMaterial, scramFormatArguments, secureBrokerProperties, writeClientProperties } from './secure.ts'

const run = promisify(execFile)

export const KAFKA_VERSION = '4.3.1'
const ROOT = resolve(import.meta.dirname, '../..')
/** The local broker's JVM options (WEIR_KAFKA_JVM_OPTS replaces them, space-separated, for experiments). */
const BROKER_JVM_OPTIONS = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC']
/** Per node of a multi-node cluster (three fit in a few GiB). */
const CLUSTER_JVM_OPTIONS = ['-Xms256m', '-Xmx512m', '-XX:+UseG1GC']

export interface KafkaBroker {
  readonly brokers: string[]
  readonly kind: 'external' | 'testcontainers' | 'local'
  /** TLS and SASL for an external cluster (WEIR_KAFKA_CONFIG); local brokers' PLAINTEXT listener needs none. */
  readonly connection?: KafkaConnection
  /** Folder with the Kafka jars (local brokers only): Kafka's perf tools run from it. */
  readonly libs?: string
  /** The nodes of a local cluster, to kill and restart (local brokers only). */
  readonly nodes?: readonly LocalNode[]
  /** The SASL_SSL listener (`secure`), when there is one. */
  readonly secure?: SecureListener
  stop(): Promise<void>
}

export interface SecureListener {
  /** host:port of the SASL_SSL listener of every node. */
  readonly brokers: readonly string[]
  /** Holds ca.pem and one client properties file per user: admin, worker, gateway (SCRAM-SHA-512), <user>-plain (PLAIN). */
  readonly dir: string
  readonly caFile: string
  /** Topics, groups and transactional ids the worker and gateway principals may use start with this. */
  readonly prefix: string
}

export function cacheDir(): string {
  return process.env.WEIR_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'weir')
}

export async function provideKafka(progress: Progress, options: LocalBrokerOptions = {}): Promise<KafkaBroker> {
  const configured = process.env.KAFKA_BOOTSTRAP_SERVERS?.trim()
  if (configured || process.env.WEIR_KAFKA_CONFIG?.trim()) {
    const { brokers, connection } = kafkaFromEnvironment(process.env)
    progress.step(`Kafka: using ${configured ? `KAFKA_BOOTSTRAP_SERVERS=${brokers.join(',')}` : `${brokers.join(',')} from WEIR_KAFKA_CONFIG`}${connection === undefined ? '' : ' with the security of WEIR_KAFKA_CONFIG'}`)
    await waitForBroker(brokers, 30_000, undefined, connection)
    return { brokers, kind: 'external', ...(connection === undefined ? {} : { connection }), stop: async () => {} }
  }
  // testcontainers gives one plain broker: a cluster or a secure listener is started from the jars.
  if ((options.nodes ?? 1) > 1 || options.secure === true) return startLocalBroker(progress, options)
  if (await dockerAnswers()) {
    progress.step('Kafka: a Docker engine answers: starting a broker with testcontainers')
    return startWithTestcontainers()
  }
  return startLocalBroker(progress, options)
}

async function dockerAnswers(): Promise<boolean> {
  if (process.env.WEIR_NO_DOCKER === '1') return false
  try {
    await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 5000 })
    return true
  } catch {
    return false
  }
}

async function startWithTestcontainers(): Promise<KafkaBroker> {
  const { KafkaContainer } = await import('@testcontainers/kafka')
  const image = process.env.WEIR_KAFKA_IMAGE ?? 'confluentinc/cp-kafka:7.9.0'
  const container = await new KafkaContainer(image)
    .withKraft()
    .withEnvironment({
      // Without these a single broker never answers InitProducerId (transactions hang).
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    })
    .start()
  const brokers = [`${container.getHost()}:${container.getMappedPort(9093)}`]
  await waitForBroker(brokers, 60_000, undefined)
  return { brokers, kind: 'testcontainers', stop: async () => void (await container.stop()) }
}

async function requireTool(command: string, args: string[], install: string): Promise<string> {
  try {
    const { stdout, stderr } = await run(command, args, { timeout: 30_000 })
    return `${stdout}${stderr}`
  } catch {
    throw new InfraUnavailable(
      `no Kafka broker: KAFKA_BOOTSTRAP_SERVERS is not set, no Docker engine answers, and \`${command}\` is missing for the local broker. ${install}`,
    )
  }
}

/** Kafka's jars (broker, tools, log4j binding) from Maven Central, cached per version. */
export async function kafkaLibs(progress: Progress): Promise<string> {
  const dir = join(cacheDir(), `kafka-${KAFKA_VERSION}`)
  const libs = join(dir, 'libs')
  if (existsSync(join(dir, '.complete'))) return libs
  const mvn = await requireTool('mvn', ['-v'], 'Install Apache Maven (apt-get install maven) or set KAFKA_BOOTSTRAP_SERVERS.')
  progress.step(`Kafka: fetching Apache Kafka ${KAFKA_VERSION} jars from Maven Central (one time; ${mvn.split('\n')[0]?.trim()})`)
  await mkdir(dir, { recursive: true })
  const staging = `${libs}.partial-${process.pid}`
  await rm(staging, { recursive: true, force: true })
  try {
    await run(
      'mvn',
      ['-q', '-B', '-f', join(ROOT, 'scripts/kafka/pom.xml'), 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${staging}`],
      { timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 },
    )
  } catch (error) {
    throw new InfraUnavailable(`Maven could not fetch the Kafka ${KAFKA_VERSION} jars: ${(error as { stderr?: string }).stderr ?? String(error)}`)
  }
  // Another weir command may have fetched the same jars meanwhile: its complete copy wins, ours goes.
  if (existsSync(join(dir, '.complete'))) {
    await rm(staging, { recursive: true, force: true })
    return libs
  }
  await rm(libs, { recursive: true, force: true })
  try {
    await rename(staging, libs)
  } catch (error) {
    if (!existsSync(join(dir, '.complete'))) throw error
    await rm(staging, { recursive: true, force: true })
    return libs
  }
  await writeFile(join(dir, '.complete'), `${(await readdir(libs)).length} jars\n`)
  return libs
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolvePort(address.port) : reject(new Error('no port'))))
    })
  })
}

/**
 * A KRaft cluster id: base64url of 16 random bytes, never starting with '-' (1 in 64 would: the storage tool's
 * argument parser then reads it as an option and formatting fails).
 */
export function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

/** One node of a local cluster: a combined broker and controller in its own JVM. */
export interface LocalNode {
  readonly id: number
  /** host:port of its PLAINTEXT listener. */
  readonly address: string
  readonly pid: number | undefined
  /** Its server.log (WARN and up; removed with the cluster when it stops). */
  readonly logFile: string
  /** SIGKILL (crash) or SIGTERM (clean stop); resolves when the JVM exited. */
  kill(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>
  /** Starts the node again on the same ports and data (after kill). */
  restart(): Promise<void>
}

export interface LocalBrokerOptions {
  /** Combined broker+controller nodes (default 1). */
  nodes?: number
  /** Adds a SASL_SSL listener with users and ACLs (scripts/infra/secure.ts). */
  secure?: boolean
}

/** A local broker or cluster from the jars, whatever KAFKA_BOOTSTRAP_SERVERS says (tests that need their own). */
export async function startLocalBroker(progress: Progress, options: LocalBrokerOptions = {}): Promise<KafkaBroker> {
  const javaVersion = await requireTool('java', ['-version'], 'Install a Java 17+ runtime (apt-get install openjdk-17-jre-headless) or set KAFKA_BOOTSTRAP_SERVERS.')
  const major = Number(/version "(\d+)/.exec(javaVersion)?.[1] ?? '0')
  if (major < 17) throw new InfraUnavailable(`the local Kafka broker needs Java 17 or newer; \`java -version\` says ${javaVersion.split('\n')[0]}`)
  const count = options.nodes ?? 1
  const libs = await kafkaLibs(progress)
  const dir = await mkdtemp(join(tmpdir(), 'weir-kafka-'))
  const material = options.secure === true ? await makeSecureMaterial(await mkdir(join(dir, 'secure'), { recursive: true }).then(() => join(dir, 'secure'))) : undefined
  const ports: Array<{ id: number; port: number; controller: number; secure: number }> = []
  for (let id = 1; id <= count; id++) ports.push({ id, port: await freePort(), controller: await freePort(), secure: material === undefined ? 0 : await freePort() })
  const voters = ports.map((p) => `${p.id}@127.0.0.1:${p.controller}`).join(',')
  // Replicated internal topics on a cluster: what a production cluster has (three copies, two in sync).
  const replication = Math.min(count, 3)
  const minIsr = Math.max(1, replication - 1)
  const classpath = join(libs, '*')
  const nodeDir = (id: number) => join(dir, `node-${id}`)
  for (const p of ports) {
    await mkdir(nodeDir(p.id), { recursive: true })
    const listeners = [`PLAINTEXT://127.0.0.1:${p.port}`, ...(material === undefined ? [] : [`SASL_SSL://127.0.0.1:${p.secure}`])]
    const properties = [
      'process.roles=broker,controller',
      `node.id=${p.id}`,
      `controller.quorum.voters=${voters}`,
      `listeners=${[...listeners, `CONTROLLER://127.0.0.1:${p.controller}`].join(',')}`,
      `advertised.listeners=${listeners.join(',')}`,
      'controller.listener.names=CONTROLLER',
      `listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${material === undefined ? '' : ',SASL_SSL:SASL_SSL'}`,
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${join(nodeDir(p.id), 'data')}`,
      'num.partitions=1',
      'auto.create.topics.enable=false',
      `default.replication.factor=${replication}`,
      `min.insync.replicas=${minIsr}`,
      `offsets.topic.replication.factor=${replication}`,
      'offsets.topic.num.partitions=4',
      `transaction.state.log.replication.factor=${replication}`,
      `transaction.state.log.min.isr=${minIsr}`,
      'transaction.state.log.num.partitions=4',
      `share.coordinator.state.topic.replication.factor=${replication}`,
      `share.coordinator.state.topic.min.isr=${minIsr}`,
      'group.initial.rebalance.delay.ms=0',
      // Short so that tests of fencing and crashed workers do not wait a minute for a dead member.
      'group.min.session.timeout.ms=1000',
      'log.retention.check.interval.ms=60000',
      ...(material === undefined ? [] : secureBrokerProperties(material)),
    ]
    await writeFile(join(nodeDir(p.id), 'server.properties'), `${properties.join('\n')}\n`)
    await writeFile(
      join(nodeDir(p.id), 'log4j2.properties'),
      [
        'rootLogger.level=INFO',
        'rootLogger.appenderRef.file.ref=file',
        'appender.file.type=File',
        'appender.file.name=file',
        `appender.file.fileName=${join(nodeDir(p.id), 'server.log')}`,
        'appender.file.layout.type=PatternLayout',
        'appender.file.layout.pattern=[%d] %p %m (%c)%n',
        'logger.kafka.name=kafka',
        'logger.kafka.level=WARN',
        'logger.state.name=state.change.logger',
        'logger.state.level=WARN',
      ].join('\n'),
    )
  }
  const what = `${count === 1 ? 'a local KRaft broker' : `a local ${count}-node KRaft cluster`} ${KAFKA_VERSION}${material === undefined ? '' : ' with a SASL_SSL listener'}`
  progress.step(`Kafka: starting ${what} on ${ports.map((p) => `127.0.0.1:${p.port}`).join(',')} (data in ${dir})`)
  const cluster = clusterId()
  try {
    await Promise.all(
      ports.map((p) =>
        run('java', ['-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', cluster, '-c', join(nodeDir(p.id), 'server.properties'), ...(material === undefined ? [] : scramFormatArguments(material))], {
          timeout: 120_000,
        }),
      ),
    )
  } catch (error) {
    throw new InfraUnavailable(`formatting the Kafka storage failed: ${(error as { stderr?: string }).stderr ?? String(error)}`)
  }
  const stderrs = new Map<number, string>()
  const processes = new Map<number, ChildProcess>()
  const watchdogs: ChildProcess[] = []
  const spawnNode = (id: number): ChildProcess => {
    const java = spawn(
      'java',
      [
        ...(process.env.WEIR_KAFKA_JVM_OPTS?.trim().split(/\s+/) ?? (count === 1 ? BROKER_JVM_OPTIONS : CLUSTER_JVM_OPTIONS)),
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${join(nodeDir(id), 'log4j2.properties')}`,
        '-cp',
        classpath,
        'kafka.Kafka',
        join(nodeDir(id), 'server.properties'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], detached: false },
    )
    java.stderr?.on('data', (chunk: Buffer) => {
      stderrs.set(id, ((stderrs.get(id) ?? '') + chunk.toString()).slice(-4000))
    })
    processes.set(id, java)
    watchdogs.push(startWatchdog(java))
    return java
  }
  for (const p of ports) spawnNode(p.id)
  const brokers = ports.map((p) => `127.0.0.1:${p.port}`)
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await Promise.all([...processes.values()].map((java) => stopProcess(java, 15_000)))
    for (const watchdog of watchdogs) watchdog.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true }).catch(() => {})
  }
  try {
    await waitForBroker(brokers, 90_000 + 60_000 * (count - 1), [...processes.values()])
  } catch (error) {
    const logs = await Promise.all(ports.map((p) => readFile(join(nodeDir(p.id), 'server.log'), 'utf8').catch(() => '')))
    await stop()
    throw new InfraUnavailable(`the local Kafka broker did not become ready: ${(error as Error).message}\n${[...stderrs.values()].join('\n')}\n${logs.map((l) => l.slice(-3000)).join('\n')}`)
  }
  let secure: SecureListener | undefined
  if (material !== undefined) {
    const secureBrokers = ports.map((p) => `127.0.0.1:${p.secure}`)
    const admin = createAdmin({ brokers, clientId: 'weir-infra-acls' })
    try {
      await grantWeirAcls(admin)
    } catch (error) {
      await stop()
      throw new InfraUnavailable(`creating the ACLs of the secure listener failed: ${(error as Error).message}`)
    } finally {
      await admin.close().catch(() => {})
    }
    await writeClientProperties(material, secureBrokers)
    secure = { brokers: secureBrokers, dir: material.dir, caFile: material.caFile, prefix: SECURE_PREFIX }
  }
  const nodes: LocalNode[] = ports.map((p) => ({
    id: p.id,
    address: `127.0.0.1:${p.port}`,
    logFile: join(nodeDir(p.id), 'server.log'),
    get pid() {
      return processes.get(p.id)?.pid
    },
    async kill(signal = 'SIGKILL') {
      const java = processes.get(p.id)
      if (java === undefined || java.exitCode !== null || java.signalCode !== null) return
      const exited = new Promise<void>((resolveExit) => java.once('exit', () => resolveExit()))
      java.kill(signal)
      await exited
    },
    async restart() {
      const java = processes.get(p.id)
      if (java !== undefined && java.exitCode === null && java.signalCode === null) return
      spawnNode(p.id)
    },
  }))
  return { brokers, kind: 'local', libs, nodes, ...(secure === undefined ? {} : { secure }), stop }
}

// If this Node process dies without running its exit handlers (SIGKILL, OOM), the watchdog stops the
// broker so no JVM is left behind holding ports and memory.
function startWatchdog(java: ChildProcess): ChildProcess {
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${java.pid} 2>/dev/null; do sleep 1; done; kill -TERM ${java.pid} 2>/dev/null; sleep 10; kill -KILL ${java.pid} 2>/dev/null; exit 0`
  const watchdog = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true })
  watchdog.unref()
  return watchdog
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/** Ready means: the broker answers metadata and can create a topic (its controller is up). */
export async function waitForBroker(brokers: string[], timeoutMs: number, processes: readonly ChildProcess[] | undefined, connection?: KafkaConnection): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    const exited = processes?.find((p) => p.exitCode !== null)
    if (exited !== undefined) throw new Error(`a broker process exited with code ${exited.exitCode}`)
    const admin = createAdmin({ brokers, requestTimeoutMs: 5000, connection })
    try {
      const probe = `__weir-ready-${process.pid}`
      await admin.createTopics([{ name: probe, partitions: 1 }])
      await admin.deleteTopics([probe])
      return
    } catch (error) {
      lastError = error
      if (isSecurityError(error)) throw error
    } finally {
      await admin.close().catch(() => {})
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`no answer from ${brokers.join(',')} within ${timeoutMs} ms: ${lastError instanceof Error ? lastError.message : String(lastError)}`)
}
