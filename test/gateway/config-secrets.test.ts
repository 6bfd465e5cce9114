// The gateway's secrets come from the environment or a file, never from a command-line value (which every local
// user can read in the process list).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { isWeirError } from '../../core/errors.ts'
import { parseGatewayConfig } from '../../gateway/config.ts'

const SESSION = 's'.repeat(40)
const HS256 = 'h'.repeat(40)

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weir-gw-secrets-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

test('secrets are read from files (the trailing newline dropped) or from the environment', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'session'), `${SESSION}\n`, { mode: 0o600 })
  await writeFile(join(dir, 'hs256'), HS256, { mode: 0o600 })
  const fromFiles = parseGatewayConfig(['--catalog', 'c.json', '--session-secret-file', join(dir, 'session'), '--jwt-hs256-secret-file', join(dir, 'hs256')], {})
  assert.equal(fromFiles.options.sessionSecret, SESSION)
  assert.equal(fromFiles.options.auth.hs256Secret, HS256)
  const fromFileEnv = parseGatewayConfig([], { WEIR_GATEWAY_CATALOG: 'c.json', WEIR_SESSION_SECRET_FILE: join(dir, 'session'), WEIR_JWT_HS256_SECRET_FILE: join(dir, 'hs256') })
  assert.equal(fromFileEnv.options.sessionSecret, SESSION)
  assert.equal(fromFileEnv.options.auth.hs256Secret, HS256)
  const fromEnv = parseGatewayConfig(['--catalog', 'c.json'], { WEIR_SESSION_SECRET: SESSION, WEIR_JWT_HS256_SECRET: HS256 })
  assert.equal(fromEnv.options.sessionSecret, SESSION)
  assert.equal(fromEnv.options.auth.hs256Secret, HS256)
})

test('a secret as a command-line value is refused with its own code, naming the variable and the file flag', () => {
  assert.throws(
    () => parseGatewayConfig(['--catalog', 'c.json', '--session-secret', SESSION, `--jwt-hs256-secret=${HS256}`, '--port', 'x'], {}),
    (error) => {
      assert.ok(isWeirError(error, 'WEIR_ERR_SECRET_ON_COMMAND_LINE'), String(error))
      assert.deepEqual(error.details.flags, ['--session-secret', '--jwt-hs256-secret'])
      const violations = error.details.violations as string[]
      assert.ok(violations.some((v) => v.includes('--session-secret is refused') && v.includes('WEIR_SESSION_SECRET') && v.includes('--session-secret-file')), violations.join(' | '))
      assert.ok(violations.some((v) => v.includes('--jwt-hs256-secret is refused') && v.includes('WEIR_JWT_HS256_SECRET') && v.includes('--jwt-hs256-secret-file')), violations.join(' | '))
      assert.ok(violations.some((v) => v.includes('--port')), 'other problems are reported with it')
      assert.ok(!JSON.stringify(error.details).includes(SESSION) && !error.message.includes(HS256), 'the secret itself is not repeated')
      return true
    },
  )
  // Even with the environment set too: the value on the command line has already leaked.
  assert.throws(
    () => parseGatewayConfig(['--jwt-hs256-secret', HS256], { WEIR_GATEWAY_CATALOG: 'c.json', WEIR_SESSION_SECRET: SESSION, WEIR_JWT_HS256_SECRET: HS256 }),
    (error) => isWeirError(error, 'WEIR_ERR_SECRET_ON_COMMAND_LINE'),
  )
})

test('an unreadable or empty secret file, or a secret given twice, is a configuration problem', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'empty'), '\n', { mode: 0o600 })
  await writeFile(join(dir, 'hs256'), HS256, { mode: 0o600 })
  assert.throws(
    () =>
      parseGatewayConfig(['--catalog', 'c.json', '--session-secret-file', join(dir, 'missing'), '--jwt-hs256-secret-file', join(dir, 'hs256')], {
        WEIR_JWT_HS256_SECRET: HS256,
      }),
    (error) => {
      assert.ok(isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS'), String(error))
      const violations = error.details.violations as string[]
      assert.ok(violations.some((v) => v.startsWith('--session-secret-file: cannot read')), violations.join(' | '))
      assert.ok(violations.some((v) => v.includes('WEIR_JWT_HS256_SECRET and --jwt-hs256-secret-file')), violations.join(' | '))
      return true
    },
  )
  assert.throws(
    () => parseGatewayConfig(['--catalog', 'c.json', '--session-secret-file', join(dir, 'empty'), '--jwt-hs256-secret-file', join(dir, 'hs256')], {}),
    (error) => isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS') && (error.details.violations as string[]).some((v) => v.includes('is empty')),
  )
  assert.throws(
    () => parseGatewayConfig(['--catalog', 'c.json'], { WEIR_JWT_HS256_SECRET: HS256 }),
    (error) => isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS') && (error.details.violations as string[]).some((v) => v.includes('WEIR_SESSION_SECRET or --session-secret-file')),
  )
})

test('the gateway service exits 2 and names the code when a secret is on its command line', async () => {
  const main = fileURLToPath(new URL('../../gateway/main.ts', import.meta.url))
  const child = spawn(process.execPath, [main, '--catalog', 'c.json', '--jwt-hs256-secret', HS256], {
    env: { ...process.env, WEIR_SESSION_SECRET: SESSION },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  assert.equal(code, 2, stderr)
  assert.match(stderr, /WEIR_ERR_SECRET_ON_COMMAND_LINE/)
  assert.match(stderr, /--jwt-hs256-secret is refused.*WEIR_JWT_HS256_SECRET or --jwt-hs256-secret-file/)
  assert.match(stderr, /\(environment only\)\s+WEIR_JWT_HS256_SECRET/, 'the usage lists the secret as environment only')
})
