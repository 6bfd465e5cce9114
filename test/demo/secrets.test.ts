// The demo keeps its secrets off command lines: every local user can read any process's argv (ps,
// /proc/<pid>/cmdline), so the HS256 and session secrets reach the gateway in 0600 files. This starts the demo as
// the browser test does (startDemo, on the shared broker) and reads the argv of every process it started.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { after, test } from 'node:test'

import { connect } from '../../gateway/client.ts'
import { startTestDemo } from '../helpers/demo.ts'
import { closeAdmin } from '../helpers/kafka.ts'

after(closeAdmin)

interface ProcessInfo {
  readonly pid: number
  readonly argv: string[]
  readonly environ: string[]
}

/** Every live descendant of `root`, from /proc (a process that exits while it is read is left out). */
function descendants(root: number): ProcessInfo[] {
  const parentOf = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parentOf.set(Number(entry), ppid)
    } catch {
      // exited meanwhile
    }
  }
  const found: ProcessInfo[] = []
  const queue = [root]
  while (queue.length > 0) {
    const parent = queue.shift() as number
    for (const [pid, ppid] of parentOf) {
      if (ppid !== parent) continue
      queue.push(pid)
      try {
        const split = (file: string) => readFileSync(`/proc/${pid}/${file}`, 'utf8').split('\0').filter((s) => s.length > 0)
        found.push({ pid, argv: split('cmdline'), environ: split('environ') })
      } catch {
        // exited meanwhile
      }
    }
  }
  return found
}

test(
  'no process the demo started carries a secret in its argv (nor its environment); the gateway reads them from 0600 files',
  { skip: process.platform === 'linux' ? false : 'reads /proc' },
  async (t) => {
    const demo = await startTestDemo(t, { name: 'demo-secrets', partitions: 1 })

    const secrets = [readFileSync(demo.secretFiles.jwtHs256, 'utf8'), readFileSync(demo.secretFiles.session, 'utf8')]
    for (const file of [demo.secretFiles.jwtHs256, demo.secretFiles.session]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, `${file} is readable by its owner only`)
    }
    for (const secret of secrets) assert.ok(secret.length >= 32, 'a secret of at least 32 characters')

    // The gateway verifies the page's tokens with the secret from its file: a client connects with one.
    const response = await fetch(new URL('/token', demo.url), { method: 'POST' })
    assert.equal(response.status, 200)
    const { token } = (await response.json()) as { token: string }
    const client = await connect({ url: demo.gatewayUrl, token, reconnect: false })
    t.after(() => client.close())
    assert.ok(client.sessionId !== undefined, 'welcomed with a session')

    const processes = descendants(process.pid)
    const argvs = processes.map((p) => p.argv.join(' '))
    assert.ok(argvs.some((a) => a.includes('gateway/main.ts')), `the gateway is among the demo's processes: ${argvs.join(' | ')}`)
    assert.ok(argvs.some((a) => a.includes('worker/cli.ts')), `the worker is among the demo's processes: ${argvs.join(' | ')}`)
    for (const p of processes) {
      for (const secret of secrets) {
        assert.ok(!p.argv.some((arg) => arg.includes(secret)), `process ${p.pid} carries a secret in its argv: ${p.argv.join(' ')}`)
        assert.ok(!p.environ.some((variable) => variable.includes(secret)), `process ${p.pid} carries a secret in its environment`)
      }
    }
    assert.ok(
      processes.some((p) => p.argv.includes('--jwt-hs256-secret-file') && p.argv.includes('--session-secret-file')),
      'the gateway was given the secret files',
    )
  },
)
