// `npm test`: static checks, then every test file under test/ with node:test, against one real Kafka
// broker and Redis for the whole run (provided by scripts/infra when not configured).
// Arguments, if any, replace the default of every file (e.g. `npm test -- test/kafka`), and only what those files
// need (test/needs.ts) is provided. `--unit` (`npm run test:unit`) runs the files that need nothing, with no static
// checks and no infrastructure.
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'

import { TEST_NEEDS } from '../test/needs.ts'
import { runChecks } from './check.ts'
import { provideChromium } from './infra/chromium.ts'
import { createProgress, InfraUnavailable, provideInfrastructure, provideS3, type Infrastructure, type S3Server } from './infra/index.ts'
import { providePythonMsgpack } from './infra/python-msgpack.ts'
import { selectTests } from './lib/test-needs.ts'

const ROOT = resolve(import.meta.dirname, '..')
const progress = createProgress('test')

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  const unit = args.length === 1 && args[0] === '--unit'
  const { files, needs } = selectTests(args, TEST_NEEDS)
  if (files.length === 0) {
    progress.step(`✘ no test files match ${args.join(' ')}`)
    return 1
  }
  const skipChecks = unit || process.env.WEIR_SKIP_CHECKS === '1'
  if (!skipChecks && !runChecks(progress)) return 1
  // The demo's browser test needs Chromium: provided before anything is started, so a failed install stops nothing.
  const chromium = needs.includes('chromium') ? await provideChromium(progress) : undefined
  // The envelope's cross-language tests need a msgpack writer that is not JavaScript.
  const python = needs.includes('python') ? await providePythonMsgpack(progress) : undefined
  // A local broker gets a SASL_SSL listener too (test/kafka/security.test.ts uses it); WEIR_TEST_SECURE=0 leaves it out,
  // WEIR_TEST_BROKERS=3 runs the suite on a three-node cluster. Files that need Redis and no broker still get both.
  const infra: Infrastructure | undefined =
    needs.includes('kafka') || needs.includes('redis')
      ? await provideInfrastructure({
          progress,
          redis: needs.includes('redis'),
          brokers: Number(process.env.WEIR_TEST_BROKERS ?? '1'),
          secure: process.env.WEIR_TEST_SECURE !== '0',
        })
      : undefined
  // The blob store's tests need an S3-compatible server (a local S3Proxy unless WEIR_S3_ENDPOINT is set).
  let s3: S3Server | undefined
  try {
    s3 = needs.includes('s3') ? await provideS3(progress) : undefined
  } catch (error) {
    await infra?.stop()
    throw error
  }
  try {
    progress.step(`running ${args.length === 0 ? 'test/**/*.test.ts' : unit ? `${files.length} files that need no infrastructure` : files.join(' ')} (needs: ${needs.join(', ') || 'none'}; node ${process.version}, ${process.execPath})`)
    const code = await new Promise<number>((resolveRun) => {
      const child = spawn(
        process.execPath,
        ['--test', '--test-concurrency=2', '--test-timeout=300000', '--test-reporter=spec', ...(args.length === 0 ? ['test/**/*.test.ts'] : files)],
        { cwd: ROOT, stdio: 'inherit', env: {
          ...process.env,
          ...infra?.env,
          ...s3?.env,
          LIBUS_LISTEN_EXCLUSIVE_PORT: '1',
          ...(chromium === undefined ? {} : { WEIR_CHROMIUM: chromium }),
          ...(python === undefined ? {} : { WEIR_PYTHON: python }),
        }, },
      )
      child.on('exit', (exitCode, signal) => resolveRun(exitCode ?? (signal ? 1 : 0)))
    })
    if (code === 0) progress.done('all tests passed')
    else progress.step(`✘ tests failed (exit ${code})`)
    return code
  } finally {
    await Promise.all([infra?.stop(), s3?.stop()])
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
