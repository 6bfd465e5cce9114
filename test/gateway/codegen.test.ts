// Typed command functions generated from the catalog: the types follow the payload schemas (checked by tsc,
// including a call that must not compile) and the functions send real commands.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { generateCommandModule, typeOf } from '../../gateway/codegen.ts'
import { connect } from '../../gateway/client.ts'
import type { GatewayClient, ResultFrame } from '../../gateway/client.ts'
import { closeAdmin } from '../helpers/kafka.ts'
import { createGatewayTopics, startGateway, startTestWorker, testCatalog, token } from './helpers.ts'

after(closeAdmin)

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

test('JSON schema to TypeScript types', () => {
  assert.equal(typeOf({ type: 'string' }, 0), 'string')
  assert.equal(typeOf({ type: ['integer', 'null'] }, 0), 'number | null')
  assert.equal(typeOf({ enum: ['a', 1] }, 0), '"a" | 1')
  assert.equal(typeOf({ type: 'array', items: { type: 'boolean' } }, 0), 'Array<boolean>')
  assert.equal(typeOf({ anyOf: [{ type: 'string' }, { const: 3 }] }, 0), '(string) | (3)')
  assert.equal(typeOf({ type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false }, 0), '{\n  a: string\n}')
  assert.equal(typeOf({}, 0), 'unknown')
})

test('the generated module type-checks, rejects a wrong payload at compile time, and sends commands', async (t) => {
  const topics = await createGatewayTopics(t)
  const catalog = testCatalog(topics)
  const dir = await mkdtemp(join(tmpdir(), 'weir-codegen-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const generated = join(dir, 'commands.ts')
  const source = generateCommandModule(catalog, { clientImport: join(ROOT, 'gateway/client.ts') })
  assert.match(source, /export type OrdersSalesPlacePayload = \{\n {2}orderId: string\n {2}qty: number\n\}/)
  assert.match(source, /\/\*\* Roles: admin\. \*\/\n\s+purge: \(payload: OrdersAdminPurgePayload/)
  assert.match(source, /export function events\(client: GatewayClient\) \{\n {2}return \{\n {4}orders: \(handler: \(event: EventFrame\) => void, options\?: SubscribeOptions\)/)
  await writeFile(generated, source)
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }')
  const good = join(dir, 'good.ts')
  const bad = join(dir, 'bad.ts')
  const use = (payload: string) =>
    `import type { GatewayClient } from ${JSON.stringify(join(ROOT, 'gateway/client.ts'))}\nimport { commands } from './commands.ts'\nexport const run = (c: GatewayClient) => commands(c).orders.sales.place(${payload})\n`
  await writeFile(good, use("{ orderId: 'o', qty: 1 }"))
  await writeFile(bad, use("{ orderId: 7, qty: 1 }"))
  const tsc = (file: string) =>
    spawnSync(
      process.execPath,
      [
        join(ROOT, 'node_modules/typescript/bin/tsc'),
        '--ignoreConfig',
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--target', 'es2024',
        '--module', 'nodenext',
        '--moduleResolution', 'nodenext',
        '--allowImportingTsExtensions',
        '--verbatimModuleSyntax',
        '--erasableSyntaxOnly',
        '--lib', 'es2024,dom',
        '--types', 'node',
        '--typeRoots', join(ROOT, 'node_modules/@types'),
        file,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    )
  const ok = tsc(good)
  assert.equal(ok.status, 0, ok.stdout + ok.stderr)
  const wrong = tsc(bad)
  assert.notEqual(wrong.status, 0)
  assert.match(wrong.stdout, /bad\.ts.*Type 'number' is not assignable to type 'string'/s)

  const worker = await startTestWorker(t, topics)
  const gateway = await startGateway(t, { catalog })
  const client = await connect({ url: `ws://127.0.0.1:${gateway.port}/ws`, token: await token() })
  t.after(() => client.close())
  const { commands } = (await import(pathToFileURL(generated).href)) as {
    commands: (c: GatewayClient) => { orders: { sales: { place: (p: unknown, o?: unknown) => Promise<ResultFrame> } } }
  }
  const sending = commands(client).orders.sales.place({ orderId: 'o-gen', qty: 3 }, { requestId: 'gen-1' })
  await worker.reply(await worker.command((c) => c.requestId === 'gen-1'), { ok: true })
  assert.deepEqual((await sending).payload, { ok: true })
})
