// `npm run bench:transaction` end to end on the real broker (a tiny run of both probes), and its option checks.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'

import { brokers } from '../helpers/kafka.ts'
import { javaBaselineBuildable } from '../helpers/maven.ts'

const run = promisify(execFile)
const script = resolve(import.meta.dirname, '../../bench/transaction.ts')

test('bad options are all reported at once, exit 2', async () => {
  const failed = await run(process.execPath, [script, '--transactions', '3', '--topics', '0', '--skip', 'redis']).then(
    () => undefined,
    (error: { code?: number; stderr?: string }) => error,
  )
  assert.equal(failed?.code, 2)
  assert.match(failed?.stderr ?? '', /--transactions must be an integer >= 10; --topics must be an integer from 1 to 100; --skip: unknown redis/)
})

test('both probes run their transactions and the JSON line has every step and the ratio', { timeout: 240_000 }, async (t) => {
  const withJava = javaBaselineBuildable()
  const { stdout } = await run(
    process.execPath,
    [script, '--transactions', '20', '--warmup', '2', '--topics', '2', '--runs', '1', '--json', ...(withJava ? [] : ['--skip', 'java'])],
    { env: { ...process.env, KAFKA_BOOTSTRAP_SERVERS: brokers().join(',') }, timeout: 230_000 },
  )
  const result = JSON.parse(stdout.trim().split('\n').at(-1) as string) as {
    weir: Record<string, { p50: number; p99: number }>
    java: Record<string, { p50: number; p99: number }> | null
    ratios: { totalP50: number | null }
  }
  for (const step of ['send', 'offsets', 'commit', 'visible', 'total']) assert.ok((result.weir[step]?.p50 ?? 0) > 0, `weir ${step}`)
  assert.ok((result.weir.total?.p50 ?? 0) >= (result.weir.send?.p50 ?? Infinity), 'a transaction takes at least its send')
  assert.match(stdout, /\| total \| [\d.]+ \/ [\d.]+ \|/)
  // The Java probe's part is its own subtest, so a machine without Maven reports it skipped instead of passing it.
  await t.test('the Java probe ran the same steps and the ratio is there', { skip: withJava ? false : 'mvn is missing: cannot build the Java probe (apt-get install maven)' }, () => {
    for (const step of ['send', 'offsets', 'commit', 'visible', 'total']) assert.ok((result.java?.[step]?.p50 ?? 0) > 0, `java ${step}`)
    assert.ok((result.ratios.totalP50 ?? 0) > 0)
  })
})
