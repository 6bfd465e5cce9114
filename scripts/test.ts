// `npm test`: static checks, then every test file under test/ with node:test, against one real Kafka
// broker and Redis for the whole run (provided by scripts/infra when not configured).
// Arguments, if any, replace the default test file glob (e.g. `npm test -- test/kafka`).
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'

import { runChecks } from './check.ts'
import { provideChromium } from './infra/chromium.ts'
import { createProgress, InfraUnavailable, provideInfrastructure } from './infra/index.ts'
import { providePythonMsgpack } from './infra/python-msgpack.ts'

const ROOT = resolve(import.meta.dirname, '..')
const progress = createProgress('test')

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  const skipChecks = process.env.WEIR_SKIP_CHECKS === '1'
  if (!skipChecks && !runChecks(progress)) return 1
  // The demo's browser test needs Chromium: provided before anything is started, so a failed install stops nothing.
  const chromium = await provideChromium(progress)
  // The envelope's cross-language tests need a msgpack writer that is not JavaScript.
  const python = await providePythonMsgpack(progress)
  // A local broker gets a SASL_SSL listener too (test/kafka/security.test.ts uses it); WEIR_TEST_SECURE=0 leaves it out,
  // WEIR_TEST_BROKERS=3 runs the suite on a three-node cluster.
  const infra = await provideInfrastructure({ progress, brokers: Number(process.env.WEIR_TEST_BROKERS ?? '1'), secure: process.env.WEIR_TEST_SECURE !== '0' })
  try {
    const files = args.length > 0 ? args.map((a) => (a.endsWith('.ts') ? a : `${a.replace(/\/$/, '')}/**/*.test.ts`)) : ['test/**/*.test.ts']
    progress.step(`running ${files.join(' ')} (node ${process.version}, ${process.execPath})`)
    const code = await new Promise<number>((resolveRun) => {
      const child = spawn(
        process.execPath,
        ['--test', '--test-concurrency=2', '--test-timeout=300000', '--test-reporter=spec', ...files],
        { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...infra.env, LIBUS_LISTEN_EXCLUSIVE_PORT: '1', WEIR_CHROMIUM: chromium, WEIR_PYTHON: python } },
      )
      child.on('exit', (exitCode, signal) => resolveRun(exitCode ?? (signal ? 1 : 0)))
    })
    if (code === 0) progress.done('all tests passed')
    else progress.step(`✘ tests failed (exit ${code})`)
    return code
  } finally {
    await infra.stop()
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof InfraUnavailable) process.stderr.write(`\n[weir] cannot run the tests: ${error.message}\n`)
    else process.stderr.write(`\n[weir] test runner failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
