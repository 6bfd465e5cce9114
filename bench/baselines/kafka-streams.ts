// The Kafka Streams baseline (Java, bench/baselines/kafka-streams/): built with Maven once per source change,
// run as a child JVM against the bench's broker, timed until its outputs are visible to a read_committed reader.
//
// Modes and the records they expect are described in bench/baselines/README.md.
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { promisify } from 'node:util'

import { createAdmin, createPartitionReader } from '../../kafka/index.ts'
import type { ConsumedRecord } from '../../kafka/index.ts'
import { InfraUnavailable, stopProcess } from '../../scripts/infra/index.ts'
import type { Progress } from '../../scripts/infra/index.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

const run = promisify(execFile)

export const KAFKA_STREAMS_PROJECT = resolve(import.meta.dirname, 'kafka-streams')
const TARGET = join(KAFKA_STREAMS_PROJECT, 'target')
const JAR = join(TARGET, 'weir-streams-baseline.jar')
const STAMP = join(TARGET, '.weir-sources.sha256')
/** Held (a folder: mkdir is atomic) while one process builds, so two processes never run Maven on one project at once. */
const BUILD_LOCK = join(TARGET, '.weir-build.lock')
/** A lock older than this was left by a process that died while building. */
const STALE_LOCK_MS = 20 * 60_000

export type KafkaStreamsMode = 'counting' | 'command-service' | 'delayed'

/** Fingerprint of everything Maven builds from: the pom and every file under src/. */
async function sourceHash(): Promise<string> {
  const hash = createHash('sha256')
  const files = [join(KAFKA_STREAMS_PROJECT, 'pom.xml')]
  const walk = async (dir: string) => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) await walk(path)
      else files.push(path)
    }
  }
  await walk(join(KAFKA_STREAMS_PROJECT, 'src'))
  for (const file of files) {
    hash.update(relative(KAFKA_STREAMS_PROJECT, file))
    hash.update('\0')
    hash.update(await readFile(file))
    hash.update('\0')
  }
  return hash.digest('hex')
}

/**
 * Builds the Kafka Streams baseline with Maven when its jar is missing or older than its sources, and returns
 * the Java classpath to run it with. Throws InfraUnavailable when Maven is missing or the build fails.
 */
export async function buildKafkaStreamsBaseline(progress: Progress): Promise<string> {
  const classpath = `${JAR}:${join(TARGET, 'lib', '*')}`
  const hash = await sourceHash()
  const built = async () => existsSync(JAR) && (await readFile(STAMP, 'utf8').catch(() => '')).trim() === hash
  if (await built()) return classpath
  await acquireBuildLock(progress)
  try {
    // Another process may have built it while this one waited for the lock.
    if (await built()) return classpath
    try {
      await run('mvn', ['-v'], { timeout: 60_000 })
    } catch {
      throw new InfraUnavailable('the Kafka Streams baseline needs Apache Maven (apt-get install maven) and a Java 17+ JDK to build')
    }
    progress.step(`Kafka Streams baseline: building with Maven (${relative(process.cwd(), KAFKA_STREAMS_PROJECT) || '.'}; the first build downloads Kafka Streams)`)
    const started = performance.now()
    try {
      await run('mvn', ['-q', '-B', 'package'], { cwd: KAFKA_STREAMS_PROJECT, timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 })
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string }
      throw new InfraUnavailable(`Maven could not build the Kafka Streams baseline:\n${`${e.stdout ?? ''}${e.stderr ?? ''}`.slice(-4000) || String(error)}`)
    }
    await writeFile(STAMP, `${hash}\n`)
    progress.done(`Kafka Streams baseline built in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    return classpath
  } finally {
    await rm(BUILD_LOCK, { recursive: true, force: true })
  }
}

async function acquireBuildLock(progress: Progress): Promise<void> {
  let told = false
  await mkdir(TARGET, { recursive: true })
  for (;;) {
    try {
      await mkdir(BUILD_LOCK)
      return
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const since = await stat(BUILD_LOCK).then((s) => s.mtimeMs, () => Date.now())
    if (Date.now() - since > STALE_LOCK_MS) {
      await rm(BUILD_LOCK, { recursive: true, force: true })
      continue
    }
    if (!told) progress.step('Kafka Streams baseline: another process is building it; waiting')
    told = true
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

export interface KafkaStreamsRunOptions {
  brokers: string[]
  mode: KafkaStreamsMode
  /** counting: the records to count; command-service: the commands topic; delayed: the schedule-request topic. */
  input: string
  /** Where the outputs that are counted appear (command-service: the outcomes topic; delayed: the deliveries' topic). */
  output: string
  applicationId: string
  exactlyOnce: boolean
  /** The run ends when this many records are visible on `output` (read_committed). */
  expectedOutputs: number
  /** Kafka Streams' state.dir (default: a temp folder, removed afterwards). */
  stateDir?: string
  /** num.stream.threads (default 1). */
  threads?: number
  /** commit.interval.ms (default 100). */
  commitIntervalMs?: number
  /** More `--name value` arguments for the Java side, e.g. `['--deadlines', topic]` (see the README). */
  extraArgs?: readonly string[]
  /** JVM options (default `-Xms256m -Xmx1g -XX:+UseG1GC`). */
  javaOptions?: readonly string[]
  /** Classpath from buildKafkaStreamsBaseline (default: build, or reuse the cached build). */
  classpath?: string
  /** Called for every output record when it becomes visible (e.g. lateness = visibleAt - weir.scheduled.at). */
  onOutput?: (record: ConsumedRecord, visibleAt: number) => void
  /** Give up after this long (default 10 minutes). */
  timeoutMs?: number
  progress?: Progress
}

export interface KafkaStreamsRunResult {
  /** Process start to the last expected output visible: JVM start, group join and task setup included. */
  seconds: number
  /** Process start to the first RUNNING state, or the first output if that came earlier (JVM start, group join, producers initialized, stores restored). */
  startupSeconds: number
  /** First RUNNING state to the last expected output visible: the figure comparable to weir's runtime.start() → last commit. */
  runningSeconds: number
  /** First output visible to the last one visible. */
  firstToLastSeconds: number
  /** utime + stime of the JVM from /proc/<pid>/stat, sampled just before stopping it. */
  cpuSeconds: number
  /** Peak resident set size of the JVM (VmHWM from /proc/<pid>/status, sampled just before stopping it). */
  peakRssMb: number
  outputs: number
  /** Exit code of the JVM after SIGTERM: 0 when Kafka Streams closed cleanly. */
  exitCode: number | null
}

let clockTicks: number | undefined
async function ticksPerSecond(): Promise<number> {
  if (clockTicks === undefined) {
    clockTicks = await run('getconf', ['CLK_TCK']).then(
      ({ stdout }) => Number(stdout.trim()) || 100,
      () => 100,
    )
  }
  return clockTicks
}

/** CPU seconds (user + system) and peak RSS in MB of a Linux process; zeros where /proc is not available. */
export async function processUsage(pid: number): Promise<{ cpuSeconds: number; peakRssMb: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  // Fields after the parenthesized command name start at field 3 (state); utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpuSeconds = stat === '' ? 0 : (Number(fields[11]) + Number(fields[12])) / (await ticksPerSecond())
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? /^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0)
  return { cpuSeconds, peakRssMb: kb / 1024 }
}

function modeArgs(options: KafkaStreamsStartOptions, stateDir: string): string[] {
  return [
    '--mode',
    options.mode,
    '--bootstrap-servers',
    options.brokers.join(','),
    '--application-id',
    options.applicationId,
    '--input',
    options.input,
    '--output',
    options.output,
    '--eos',
    options.exactlyOnce ? 'on' : 'off',
    '--commit-interval-ms',
    String(options.commitIntervalMs ?? 100),
    '--state-dir',
    stateDir,
    '--threads',
    String(options.threads ?? 1),
    ...(options.extraArgs ?? []),
  ]
}

/**
 * Runs one Kafka Streams application until `expectedOutputs` records are visible on `output` at
 * read_committed, then stops it (SIGTERM, clean close) and returns its timings and resource use.
 * The topics should exist (the Java side creates missing ones with the input's partition count).
 */
export async function runKafkaStreams(options: KafkaStreamsRunOptions): Promise<KafkaStreamsRunResult> {
  const progress = options.progress ?? { step: () => {}, done: () => {} }
  const classpath = options.classpath ?? (await buildKafkaStreamsBaseline(progress))
  const ownStateDir = options.stateDir === undefined
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'weir-streams-')))
  const timeoutMs = options.timeoutMs ?? 10 * 60_000
  const javaOptions = options.javaOptions ?? ['-Xms256m', '-Xmx1g', '-XX:+UseG1GC']
  const admin = createAdmin({ ...kafkaSecurity(), brokers: options.brokers })
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers: options.brokers, maxWaitMs: 100 })

  const started = Date.now()
  const java = spawn('java', [...javaOptions, '-cp', classpath, 'dev.weir.bench.Main', ...modeArgs(options, stateDir)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const killOnExit = () => java.kill('SIGKILL')
  process.once('exit', killOnExit)
  let runningAt: number | undefined
  let failure: string | undefined
  let stderr = ''
  let stdoutRest = ''
  java.stdout?.on('data', (chunk: Buffer) => {
    const lines = (stdoutRest + chunk.toString()).split('\n')
    stdoutRest = lines.pop() ?? ''
    for (const line of lines) {
      const state = /^weir-streams: (\S+) ?(.*)$/.exec(line)
      if (state === null) continue
      if (state[1] === 'RUNNING' && runningAt === undefined) runningAt = Number(state[2]) || Date.now()
      if (state[1] === 'FAILED') failure = state[2]
      progress.step(`  kafka streams: ${state[1]}`)
    }
  })
  java.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000)
  })
  const exited = () => java.exitCode !== null || java.signalCode !== null
  const describeExit = () => `the Kafka Streams process ${failure === undefined ? `exited (${java.exitCode ?? java.signalCode})` : `failed: ${failure}`}\n${stderr.slice(-4000)}`

  let result: Omit<KafkaStreamsRunResult, 'exitCode'>
  try {
    // The output topic may still be in creation by the Java side.
    let partitions = 0
    while (partitions === 0) {
      if (exited()) throw new Error(describeExit())
      if (Date.now() - started > timeoutMs) throw new Error(`output topic ${options.output} did not appear within ${timeoutMs} ms`)
      partitions = await admin.partitionCount(options.output).catch(() => 0)
      if (partitions === 0) await new Promise((r) => setTimeout(r, 200))
    }
    const all = Array.from({ length: partitions }, (_, partition) => ({ topic: options.output, partition }))
    const positions = new Map((await reader.offsets(all, 'earliest')).map((o) => [o.partition, o.offset]))
    let outputs = 0
    let firstAt: number | undefined
    let lastAt = 0
    let reported = 0
    while (outputs < options.expectedOutputs) {
      if (failure !== undefined || exited()) throw new Error(describeExit())
      if (Date.now() - started > timeoutMs) {
        throw new Error(`Kafka Streams (${options.mode}) produced ${outputs} of ${options.expectedOutputs} outputs in ${timeoutMs} ms\n${stderr.slice(-2000)}`)
      }
      const batches = await reader.fetch([...positions].map(([partition, offset]) => ({ topic: options.output, partition, offset })))
      const visibleAt = Date.now()
      for (const batch of batches) {
        positions.set(batch.partition, batch.nextOffset)
        if (batch.records.length === 0) continue
        firstAt ??= visibleAt
        lastAt = visibleAt
        outputs += batch.records.length
        if (options.onOutput !== undefined) for (const record of batch.records) options.onOutput(record, visibleAt)
      }
      if (outputs - reported >= Math.max(1, options.expectedOutputs / 10)) {
        reported = outputs
        progress.step(`  kafka streams: ${outputs}/${options.expectedOutputs} outputs`)
      }
    }
    const pid = java.pid as number
    const usage = await processUsage(pid)
    // Kafka Streams can emit its first outputs just before the client state reads RUNNING (several partitions).
    const startedRunning = Math.min(runningAt ?? Infinity, firstAt ?? Infinity, lastAt)
    result = {
      seconds: (lastAt - started) / 1000,
      startupSeconds: (startedRunning - started) / 1000,
      runningSeconds: (lastAt - startedRunning) / 1000,
      firstToLastSeconds: (lastAt - (firstAt ?? lastAt)) / 1000,
      cpuSeconds: usage.cpuSeconds,
      peakRssMb: usage.peakRssMb,
      outputs,
    }
  } finally {
    await stopProcess(java, 45_000)
    process.removeListener('exit', killOnExit)
    await reader.close().catch(() => {})
    await admin.close().catch(() => {})
    if (ownStateDir) await rm(stateDir, { recursive: true, force: true }).catch(() => {})
  }
  return { ...result, exitCode: java.exitCode }
}

/** What startKafkaStreams needs: the run options without the end condition. */
export type KafkaStreamsStartOptions = Omit<KafkaStreamsRunOptions, 'expectedOutputs' | 'onOutput' | 'timeoutMs'>

export interface KafkaStreamsProcess {
  readonly pid: number
  /** Resolves with the epoch ms of the first RUNNING state; rejects when the JVM fails or exits first. */
  readonly running: Promise<number>
  /** Why the process is no longer usable (failed or exited), else undefined. */
  problem(): string | undefined
  /** CPU seconds and peak RSS of the JVM so far. */
  usage(): Promise<{ cpuSeconds: number; peakRssMb: number }>
  /** SIGTERM (clean close), SIGKILL after 45 s; resolves with the exit code. */
  stop(): Promise<number | null>
}

/**
 * Starts one Kafka Streams application and leaves it running, for runs that end on a clock rather than on a
 * count of outputs (bench:partition's steady state: the harness feeds it and samples its output topic).
 */
export async function startKafkaStreams(options: KafkaStreamsStartOptions): Promise<KafkaStreamsProcess> {
  const progress = options.progress ?? { step: () => {}, done: () => {} }
  const classpath = options.classpath ?? (await buildKafkaStreamsBaseline(progress))
  const ownStateDir = options.stateDir === undefined
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'weir-streams-')))
  const javaOptions = options.javaOptions ?? ['-Xms256m', '-Xmx1g', '-XX:+UseG1GC']
  const java = spawn('java', [...javaOptions, '-cp', classpath, 'dev.weir.bench.Main', ...modeArgs(options, stateDir)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const killOnExit = () => java.kill('SIGKILL')
  process.once('exit', killOnExit)
  let failure: string | undefined
  let stderr = ''
  let stdoutRest = ''
  let onRunning: (at: number) => void = () => {}
  let onFailed: (error: Error) => void = () => {}
  const running = new Promise<number>((resolve, reject) => {
    onRunning = resolve
    onFailed = reject
  })
  running.catch(() => {})
  const describe = () => `the Kafka Streams process ${failure === undefined ? `exited (${java.exitCode ?? java.signalCode})` : `failed: ${failure}`}\n${stderr.slice(-4000)}`
  java.stdout?.on('data', (chunk: Buffer) => {
    const lines = (stdoutRest + chunk.toString()).split('\n')
    stdoutRest = lines.pop() ?? ''
    for (const line of lines) {
      const state = /^weir-streams: (\S+) ?(.*)$/.exec(line)
      if (state === null) continue
      if (state[1] === 'RUNNING') onRunning(Number(state[2]) || Date.now())
      if (state[1] === 'FAILED') {
        failure = state[2]
        onFailed(new Error(describe()))
      }
      progress.step(`  kafka streams: ${state[1]}`)
    }
  })
  java.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000)
  })
  let stopping = false
  java.once('exit', () => onFailed(new Error(describe())))
  return {
    pid: java.pid as number,
    running,
    problem: () => (stopping ? undefined : failure !== undefined || java.exitCode !== null || java.signalCode !== null ? describe() : undefined),
    usage: () => processUsage(java.pid as number),
    async stop() {
      stopping = true
      await stopProcess(java, 45_000)
      process.removeListener('exit', killOnExit)
      if (ownStateDir) await rm(stateDir, { recursive: true, force: true }).catch(() => {})
      return java.exitCode
    },
  }
}
