// `weir import-redis` refuses a Redis password on its command line (every local user can read argv).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { importRedisMain } from '../../../processors/redis/cli.ts'

test('a --redis URL with a password is refused before anything is touched; REDIS_URL is the place for it', async (t) => {
  let stderr = ''
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString()
    return true
  }) as typeof process.stderr.write
  t.after(() => {
    process.stderr.write = write
  })
  const code = await importRedisMain(['--redis', 'redis://user:hunter2@127.0.0.1:1', '--key', 'k', '--topic', 't', '--brokers', '127.0.0.1:1'], {})
  process.stderr.write = write
  assert.equal(code, 2)
  assert.match(stderr, /--redis carries a password \(WEIR_ERR_SECRET_ON_COMMAND_LINE\).*REDIS_URL/)
})
