// Provides a Chromium for the demo's browser test (test/demo/demo.test.ts): WEIR_CHROMIUM when it points at an
// executable, else Debian's /usr/bin/chromium, installed with apt-get when missing (as root, non-interactive).
// playwright-core drives it; its own browser downloads come from a CDN these machines cannot reach.
import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'

import { InfraUnavailable, type Progress } from './progress.ts'

export const DEBIAN_CHROMIUM = '/usr/bin/chromium'

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Runs apt-get with progress every 15 s; resolves with its exit code and the tail of its output. */
export function aptGet(args: string[], progress: Progress, what: string): Promise<{ code: number; tail: string }> {
  return new Promise((resolveRun) => {
    const child = spawn('apt-get', args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'a' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    let unpacked = 0
    const onData = (chunk: Buffer) => {
      const text = chunk.toString()
      unpacked += text.match(/^Unpacking /gm)?.length ?? 0
      output = (output + text).slice(-8000)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    const started = Date.now()
    const timer = setInterval(() => progress.step(`${what}: ${Math.round((Date.now() - started) / 1000)} s, ${unpacked} package(s) unpacked`), 15_000)
    child.on('error', (error) => {
      clearInterval(timer)
      resolveRun({ code: 127, tail: error.message })
    })
    child.on('exit', (code) => {
      clearInterval(timer)
      resolveRun({ code: code ?? 1, tail: output.split('\n').slice(-15).join('\n') })
    })
  })
}

/** The path of a Chromium executable; installs Debian's package when there is none. */
export async function provideChromium(progress: Progress): Promise<string> {
  const configured = process.env.WEIR_CHROMIUM?.trim()
  if (configured) {
    if (!executable(configured)) throw new InfraUnavailable(`WEIR_CHROMIUM=${configured} is not an executable`)
    progress.step(`Chromium: using WEIR_CHROMIUM=${configured}`)
    return configured
  }
  if (executable(DEBIAN_CHROMIUM)) {
    progress.step(`Chromium: ${DEBIAN_CHROMIUM}`)
    return DEBIAN_CHROMIUM
  }
  const manual = `Install Chromium yourself (Debian/Ubuntu: apt-get install -y chromium) or set WEIR_CHROMIUM to a Chromium or Chrome executable.`
  if (process.platform !== 'linux') throw new InfraUnavailable(`Chromium is needed for the demo's browser test and ${DEBIAN_CHROMIUM} is missing. ${manual}`)
  if (process.getuid?.() !== 0) throw new InfraUnavailable(`Chromium is missing and installing it with apt-get needs root. ${manual}`)
  progress.step('Chromium: not installed: apt-get install -y chromium (a few minutes on a fresh machine)')
  let run = await aptGet(['install', '-y', 'chromium'], progress, 'installing chromium')
  if (run.code !== 0) {
    // A fresh machine may have no package lists yet.
    progress.step('Chromium: apt-get install failed; running apt-get update and trying again')
    const update = await aptGet(['update'], progress, 'apt-get update')
    if (update.code === 0) run = await aptGet(['install', '-y', 'chromium'], progress, 'installing chromium')
  }
  if (run.code !== 0 || !executable(DEBIAN_CHROMIUM)) {
    throw new InfraUnavailable(`apt-get install chromium failed (exit ${run.code}):\n${run.tail}\n${manual}`)
  }
  progress.done(`Chromium installed: ${DEBIAN_CHROMIUM}`)
  return DEBIAN_CHROMIUM
}
