// The load test's child processes: forked helpers (gateway, clients, bare uWS) that talk over IPC, and the
// orders workers, each with its output in a log file.
import { fork, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { join, resolve } from 'node:path'

import { ORDERS_PREFIX_ENV } from '../../examples/orders/service.ts'

const ROOT = resolve(import.meta.dirname, '../..')

export interface Child {
  readonly name: string
  readonly process: ChildProcess
  readonly exited: Promise<number | null>
  readonly logFile: string
  tail(): string
  stop(): Promise<void>
}

export function watch(name: string, child: ChildProcess, logFile: string): Child {
  const file = createWriteStream(logFile)
  let output = ''
  const onData = (chunk: Buffer) => {
    file.write(chunk)
    output = (output + chunk.toString()).slice(-32_000)
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal === null ? null : 128))))
  void exited.then(() => file.end())
  return {
    name,
    process: child,
    exited,
    logFile,
    tail: () => output.split('\n').slice(-20).join('\n'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}

export function forkChild(name: string, script: string, env: Record<string, string>, dir: string): Child {
  const child = fork(join(import.meta.dirname, script), [], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  return watch(name, child, join(dir, `${name}.log`))
}

/** The first IPC message of `type` from a child, or its log tail when it exits first. */
export function messageFrom<T extends { type: string }>(child: Child, type: string, timeoutMs = 120_000): Promise<T> {
  return new Promise((resolveMessage, reject) => {
    const timer = setTimeout(() => fail(`no ${type} within ${timeoutMs} ms`), timeoutMs)
    const onMessage = (message: { type: string; message?: string }) => {
      if (message.type === 'failed') fail(message.message ?? 'failed')
      if (message.type !== type) return
      cleanup()
      resolveMessage(message as T)
    }
    const onExit = (code: number | null) => fail(`exited (code ${code})`)
    const fail = (why: string) => {
      cleanup()
      reject(new Error(`the ${child.name} ${why}:\n${child.tail()}`))
    }
    const cleanup = () => {
      clearTimeout(timer)
      child.process.removeListener('message', onMessage)
      child.process.removeListener('exit', onExit)
    }
    child.process.on('message', onMessage)
    child.process.once('exit', onExit)
  })
}

export interface WorkerSettings {
  readonly workers: number
  readonly partitions: number
  readonly commitIntervalMs: number
  readonly commitWhenIdle: boolean
}

/** Starts --workers worker processes in one group; resolves when together they own every partition, restored. */
export async function startWorkers(brokers: readonly string[], prefix: string, dir: string, settings: WorkerSettings): Promise<Child[]> {
  const workers: Array<{ child: Child; exitCode: number | null | undefined; port: number }> = []
  for (let i = 0; i < settings.workers; i++) {
    const spawned = spawn(
      process.execPath,
      [
        'worker/cli.ts', 'worker', 'examples/orders/topology.ts',
        '--brokers', brokers.join(','),
        '--state-dir', join(dir, `state-${i}`),
        '--http-port', '0', '--http-host', '127.0.0.1',
        '--commit-interval-ms', String(settings.commitIntervalMs),
        '--commit-when-idle', String(settings.commitWhenIdle),
        '--session-timeout-ms', '6000',
      ],
      { cwd: ROOT, env: { ...process.env, [ORDERS_PREFIX_ENV]: prefix }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const entry = { child: watch(settings.workers === 1 ? 'worker' : `worker-${i}`, spawned, join(dir, `worker-${i}.log`)), exitCode: undefined as number | null | undefined, port: 0 }
    void entry.child.exited.then((code) => (entry.exitCode = code))
    workers.push(entry)
  }
  const deadline = Date.now() + 120_000
  for (;;) {
    let owned = 0
    let allReady = true
    for (const w of workers) {
      if (w.exitCode !== undefined) throw new Error(`${w.child.name} exited (code ${w.exitCode}) before it was ready:\n${w.child.tail()}`)
      w.port ||= Number(/"httpPort":(\d+)/.exec(w.child.tail())?.[1] ?? 0)
      const body =
        w.port > 0
          ? ((await fetch(`http://127.0.0.1:${w.port}/ready`, { signal: AbortSignal.timeout(2000) })
              .then((r) => r.json())
              .catch(() => undefined)) as { ready?: boolean; partitions?: number[] } | undefined)
          : undefined
      if (body?.ready !== true) allReady = false
      owned += body?.partitions?.length ?? 0
    }
    if (allReady && owned === settings.partitions) return workers.map((w) => w.child)
    if (Date.now() > deadline) throw new Error(`the workers did not own all ${settings.partitions} partitions within 120 s:\n${workers.map((w) => w.child.tail()).join('\n')}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}
