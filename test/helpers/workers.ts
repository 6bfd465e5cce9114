// Worker processes for multi-process tests and the chaos command: spawn `worker/cli.ts`, wait for
// readiness over its HTTP port, kill it.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { resolve } from 'node:path'

import { waitFor } from './wait.ts'

const ROOT = resolve(import.meta.dirname, '../..')

export interface WorkerProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly port: Promise<number>
  /** Last lines the worker logged (stdout and stderr), for failure messages. */
  logs(): string
  ready(): Promise<{ ready: boolean; partitions: number[] }>
  kill(signal: NodeJS.Signals): Promise<number | null>
  readonly exited: Promise<number | null>
}

export interface SpawnWorkerOptions {
  name: string
  module: string
  brokers: readonly string[]
  stateDir: string
  applicationId: string
  env?: Record<string, string>
  extraArgs?: string[]
  /** Also append everything the worker prints to this file (kept across restarts of the same slot). */
  logFile?: string
}

export function spawnWorker(options: SpawnWorkerOptions): WorkerProcess {
  const child = spawn(
    process.execPath,
    [
      resolve(ROOT, 'worker/cli.ts'),
      'worker',
      options.module,
      '--application-id',
      options.applicationId,
      '--brokers',
      options.brokers.join(','),
      '--state-dir',
      options.stateDir,
      '--http-port',
      '0',
      '--http-host',
      '127.0.0.1',
      '--session-timeout-ms',
      '6000',
      ...(options.extraArgs ?? []),
    ],
    { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let log = ''
  let resolvePort!: (port: number) => void
  const port = new Promise<number>((r) => {
    resolvePort = r
  })
  const file = options.logFile === undefined ? undefined : createWriteStream(options.logFile, { flags: 'a' })
  const onData = (chunk: Buffer) => {
    file?.write(chunk)
    log = (log + chunk.toString()).slice(-20_000)
    const match = /"httpPort":(\d+)/.exec(log)
    if (match) resolvePort(Number(match[1]))
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  if (file !== undefined) void exited.then(() => file.end())
  const worker: WorkerProcess = {
    name: options.name,
    child,
    port,
    exited,
    logs: () => log,
    async ready() {
      const response = await fetch(`http://127.0.0.1:${await port}/ready`)
      return (await response.json()) as { ready: boolean; partitions: number[] }
    },
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
  return worker
}

/** Waits until the workers together own exactly `partitions` partitions, each once, all ready. */
export async function waitForAssignment(workers: readonly WorkerProcess[], partitions: number, timeoutMs = 60_000): Promise<Map<string, number[]>> {
  return waitFor(
    async () => {
      const owned = new Map<string, number[]>()
      for (const worker of workers) {
        const status = await worker.ready()
        if (!status.ready) return undefined
        owned.set(worker.name, status.partitions)
      }
      const all = [...owned.values()].flat().sort((a, b) => a - b)
      return all.length === partitions && all.every((p, i) => p === i) ? owned : undefined
    },
    { timeoutMs, intervalMs: 200, what: `${workers.length} worker(s) to share ${partitions} partitions` },
  )
}
