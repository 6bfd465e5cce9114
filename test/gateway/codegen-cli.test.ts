// `weir codegen`: the typed command module of a catalog module, and a coded exit for bad arguments.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { test } from 'node:test'

const ROOT = resolve(import.meta.dirname, '../..')
const run = (...args: string[]) => spawnSync(process.execPath, [resolve(ROOT, 'gateway/codegen-cli.ts'), ...args], { cwd: ROOT, encoding: 'utf8' })

test('weir codegen prints the typed command functions of a catalog module', () => {
  const result = run('--catalog', 'examples/orders/catalog.ts', '--client-import', '../gateway/client.ts')
  assert.equal(result.status, 0, result.stderr)
  assert.match(result.stdout, /import type \{ EventFrame, GatewayClient, ResultFrame, SendOptions, SubscribeOptions \} from "\.\.\/gateway\/client\.ts"/)
  assert.match(result.stdout, /export type OrdersOrdersPlacePayload = /)
})

test('weir codegen without a catalog, or with one that does not load, exits 2 with a message', () => {
  const missing = run()
  assert.equal(missing.status, 2)
  assert.match(missing.stderr, /--catalog is required/)
  const broken = run('--catalog', 'no/such/catalog.ts')
  assert.equal(broken.status, 2)
  assert.match(broken.stderr, /WEIR_ERR_INVALID_OPTIONS/)
})
