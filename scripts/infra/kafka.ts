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

import { createAdmin } from '../../kafka/index.ts'
import { InfraUnavailable, type Progress } from './progress.ts'

const run = promisify(execFile)

export const KAFKA_VERSION = '4.3.1'
const ROOT = resolve(import.meta.dirname, '../..')
/** The local broker's JVM options (WEIR_KAFKA_JVM_OPTS replaces them, space-separated, for experiments). */
const BROKER_JVM_OPTIONS = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC']

export interface KafkaBroker {
  readonly brokers: string[]
  readonly kind: 'external' | 'testcontainers' | 'local'
  /** Folder with the Kafka jars (local brokers only): Kafka's perf tools run from it. */
  readonly libs?: string
  stop(): Promise<void>
}

export function cacheDir(): string {
  return process.env.WEIR_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'weir')
}

export async function provideKafka(progress: Progress): Promise<KafkaBroker> {
  const configured = process.env.KAFKA_BOOTSTRAP_SERVERS?.trim()
  if (configured) {
    const brokers = configured.split(',').map((b) => b.trim()).filter(Boolean)
    progress.step(`Kafka: using KAFKA_BOOTSTRAP_SERVERS=${brokers.join(',')}`)
    await waitForBroker(brokers, 30_000, undefined)
    return { brokers, kind: 'external', stop: async () => {} }
  }
  if (await dockerAnswers()) {
    progress.step('Kafka: a Docker engine answers: starting a broker with testcontainers')
    return startWithTestcontainers()
  }
  return startLocalBroker(progress)
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

async function freePort(): Promise<number> {
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

async function startLocalBroker(progress: Progress): Promise<KafkaBroker> {
  const javaVersion = await requireTool('java', ['-version'], 'Install a Java 17+ runtime (apt-get install openjdk-17-jre-headless) or set KAFKA_BOOTSTRAP_SERVERS.')
  const major = Number(/version "(\d+)/.exec(javaVersion)?.[1] ?? '0')
  if (major < 17) throw new InfraUnavailable(`the local Kafka broker needs Java 17 or newer; \`java -version\` says ${javaVersion.split('\n')[0]}`)
  const libs = await kafkaLibs(progress)
  const dir = await mkdtemp(join(tmpdir(), 'weir-kafka-'))
  const [port, controllerPort] = [await freePort(), await freePort()]
  const properties = [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${join(dir, 'data')}`,
    'num.partitions=1',
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=4',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // Short so that tests of fencing and crashed workers do not wait a minute for a dead member.
    'group.min.session.timeout.ms=1000',
    'log.retention.check.interval.ms=60000',
  ]
  await writeFile(join(dir, 'server.properties'), `${properties.join('\n')}\n`)
  await writeFile(
    join(dir, 'log4j2.properties'),
    [
      'rootLogger.level=INFO',
      'rootLogger.appenderRef.file.ref=file',
      'appender.file.type=File',
      'appender.file.name=file',
      `appender.file.fileName=${join(dir, 'server.log')}`,
      'appender.file.layout.type=PatternLayout',
      'appender.file.layout.pattern=[%d] %p %m (%c)%n',
      'logger.kafka.name=kafka',
      'logger.kafka.level=WARN',
      'logger.state.name=state.change.logger',
      'logger.state.level=WARN',
    ].join('\n'),
  )
  const classpath = join(libs, '*')
  progress.step(`Kafka: starting a local KRaft broker ${KAFKA_VERSION} on 127.0.0.1:${port} (data in ${dir})`)
  try {
    await run('java', ['-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId(), '-c', join(dir, 'server.properties')], {
      timeout: 120_000,
    })
  } catch (error) {
    throw new InfraUnavailable(`formatting the Kafka storage failed: ${(error as { stderr?: string }).stderr ?? String(error)}`)
  }
  const java = spawn(
    'java',
    [
      ...(process.env.WEIR_KAFKA_JVM_OPTS?.trim().split(/\s+/) ?? BROKER_JVM_OPTIONS),
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
      '-cp',
      classpath,
      'kafka.Kafka',
      join(dir, 'server.properties'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: false },
  )
  let stderr = ''
  java.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  const watchdog = startWatchdog(java)
  const brokers = [`127.0.0.1:${port}`]
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await stopProcess(java, 15_000)
    watchdog.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true }).catch(() => {})
  }
  try {
    await waitForBroker(brokers, 90_000, java)
  } catch (error) {
    const log = await readFile(join(dir, 'server.log'), 'utf8').catch(() => '')
    await stop()
    throw new InfraUnavailable(`the local Kafka broker did not become ready: ${(error as Error).message}\n${stderr}\n${log.slice(-3000)}`)
  }
  return { brokers, kind: 'local', libs, stop }
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
export async function waitForBroker(brokers: string[], timeoutMs: number, process_: ChildProcess | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    if (process_ !== undefined && process_.exitCode !== null) throw new Error(`the broker process exited with code ${process_.exitCode}`)
    const admin = createAdmin({ brokers, requestTimeoutMs: 5000 })
    try {
      const probe = `__weir-ready-${process.pid}`
      await admin.createTopics([{ name: probe, partitions: 1 }])
      await admin.deleteTopics([probe])
      return
    } catch (error) {
      lastError = error
    } finally {
      await admin.close().catch(() => {})
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`no answer from ${brokers.join(',')} within ${timeoutMs} ms: ${lastError instanceof Error ? lastError.message : String(lastError)}`)
}
