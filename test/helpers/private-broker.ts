// A broker of the test's own, for tests that kill it (never the shared one the run provides): a single-node
// KRaft broker from the same cached Kafka jars and helpers scripts/infra/kafka.ts uses, on free ports, its data in
// a temp folder. `kill()` SIGKILLs it; `stop()` also removes its folder.
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { clusterId, kafkaLibs, waitForBroker } from '../../scripts/infra/kafka.ts'
import { createProgress } from '../../scripts/infra/progress.ts'

const run = promisify(execFile)

export interface PrivateBroker {
  readonly brokers: string[]
  /** SIGKILL: the broker vanishes without a word (resolves once the process is gone). */
  kill(): Promise<void>
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolvePort(address.port) : reject(new Error('no port'))))
    })
  })
}

export async function startPrivateBroker(): Promise<PrivateBroker> {
  const libs = await kafkaLibs(createProgress('private-broker'))
  const dir = await mkdtemp(join(tmpdir(), 'weir-private-kafka-'))
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
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'group.min.session.timeout.ms=1000',
  ]
  await writeFile(join(dir, 'server.properties'), `${properties.join('\n')}\n`)
  await writeFile(join(dir, 'log4j2.properties'), 'rootLogger.level=WARN\n')
  const classpath = join(libs, '*')
  await run('java', ['-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId(), '-c', join(dir, 'server.properties')], { timeout: 120_000 })
  const java = spawn(
    'java',
    ['-Xms128m', '-Xmx384m', '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`, '-cp', classpath, 'kafka.Kafka', join(dir, 'server.properties')],
    { stdio: 'ignore' },
  )
  // If the test process dies without its cleanup, the watchdog kills the broker, so no JVM is left behind.
  spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${java.pid} 2>/dev/null; do sleep 1; done; kill -KILL ${java.pid} 2>/dev/null; exit 0`], {
    stdio: 'ignore',
    detached: true,
  }).unref()
  const exited = new Promise<void>((r) => java.once('exit', () => r()))
  const kill = async () => {
    if (java.exitCode === null && java.signalCode === null) java.kill('SIGKILL')
    await exited
  }
  const brokers = [`127.0.0.1:${port}`]
  const stop = async () => {
    await kill()
    await rm(dir, { recursive: true, force: true }).catch(() => {})
  }
  try {
    await waitForBroker(brokers, 120_000, [java])
  } catch (error) {
    await stop()
    throw error
  }
  return { brokers, kill, stop }
}
