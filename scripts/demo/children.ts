// The demo's child processes (worker, gateway): started in their own process group with their output in a log
// file, watched for a line or for readiness, stopped with SIGTERM (SIGKILL after 15 s).
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '../..')

export interface Child {
  readonly name: string
  readonly process: ChildProcess
  readonly exited: Promise<number | null>
  tail(): string
  /** Resolves with the first match of `pattern` in the output. */
  match(pattern: RegExp): Promise<RegExpExecArray>
  stop(): Promise<void>
}

export function startChild(name: string, args: string[], env: Record<string, string>, logFile: string): Child {
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
export async function waitReady(child: Child, what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
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

export async function httpOk(url: string, check: (body: unknown) => boolean = () => true): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
  if (!response.ok) return false
  return check(await response.json().catch(() => undefined))
}
