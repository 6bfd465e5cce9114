// Provides a Python with msgpack for the envelope's cross-language tests (test/envelope/vectors.test.ts):
// WEIR_PYTHON when it points at a Python that imports msgpack, else Debian's /usr/bin/python3 with python3-msgpack,
// installed with apt-get when missing (as root, non-interactive), the way chromium.ts provides Chromium.
// Debian's interpreter, not whatever python3 is first on PATH: a pyenv or virtualenv Python does not see Debian's
// python3-msgpack.
import { spawnSync } from 'node:child_process'

import { aptGet } from './chromium.ts'
import { InfraUnavailable, type Progress } from './progress.ts'

export const DEBIAN_PYTHON = '/usr/bin/python3'

/** The msgpack version `python` imports, or undefined when it cannot run or has no msgpack. */
function msgpackVersion(python: string): string | undefined {
  const run = spawnSync(python, ['-c', 'import msgpack; print(".".join(map(str, msgpack.version)))'], { encoding: 'utf8', timeout: 60_000 })
  return run.status === 0 ? run.stdout.trim() : undefined
}

/** The path of a Python that imports msgpack; installs Debian's python3-msgpack when there is none. */
export async function providePythonMsgpack(progress: Progress): Promise<string> {
  const configured = process.env.WEIR_PYTHON?.trim()
  if (configured) {
    const version = msgpackVersion(configured)
    if (version === undefined) throw new InfraUnavailable(`WEIR_PYTHON=${configured} does not run or cannot import msgpack`)
    progress.step(`Python msgpack: using WEIR_PYTHON=${configured} (msgpack ${version})`)
    return configured
  }
  const found = msgpackVersion(DEBIAN_PYTHON)
  if (found !== undefined) {
    progress.step(`Python msgpack: ${DEBIAN_PYTHON} (msgpack ${found})`)
    return DEBIAN_PYTHON
  }
  const manual = `Install it yourself (Debian/Ubuntu: apt-get install -y python3-msgpack) or set WEIR_PYTHON to a Python that can import msgpack.`
  if (process.platform !== 'linux') throw new InfraUnavailable(`the envelope tests need Python's msgpack and ${DEBIAN_PYTHON} cannot import it. ${manual}`)
  if (process.getuid?.() !== 0) throw new InfraUnavailable(`python3-msgpack is missing and installing it with apt-get needs root. ${manual}`)
  progress.step('Python msgpack: not installed: apt-get install -y python3-msgpack')
  let run = await aptGet(['install', '-y', 'python3-msgpack'], progress, 'installing python3-msgpack')
  if (run.code !== 0) {
    // A fresh machine may have no package lists yet.
    progress.step('Python msgpack: apt-get install failed; running apt-get update and trying again')
    const update = await aptGet(['update'], progress, 'apt-get update')
    if (update.code === 0) run = await aptGet(['install', '-y', 'python3-msgpack'], progress, 'installing python3-msgpack')
  }
  const installed = msgpackVersion(DEBIAN_PYTHON)
  if (run.code !== 0 || installed === undefined) {
    throw new InfraUnavailable(`apt-get install python3-msgpack failed (exit ${run.code}):\n${run.tail}\n${manual}`)
  }
  progress.done(`Python msgpack installed: ${DEBIAN_PYTHON} (msgpack ${installed})`)
  return DEBIAN_PYTHON
}
