// The gateway service's configuration: flags over environment over defaults, every problem at once; docs/gateway.md's
// table names every setting.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { gatewaySettings, parseGatewayConfig } from '../../gateway/config.ts'

const base = { WEIR_GATEWAY_CATALOG: 'catalog.json', WEIR_SESSION_SECRET: 's'.repeat(32), WEIR_JWT_HS256_SECRET: 'h'.repeat(32) }

test('environment and flags make the options; flags win', () => {
  const config = parseGatewayConfig(['--port', '9000', '--deadlines', 'off'], { ...base, WEIR_GATEWAY_PORT: '7000', KAFKA_BOOTSTRAP_SERVERS: 'a:1, b:2' })
  assert.equal(config.catalogPath, 'catalog.json')
  assert.equal(config.options.port, 9000)
  assert.deepEqual(config.options.brokers, ['a:1', 'b:2'])
  assert.equal(config.options.deadlines, 'off')
  assert.equal(config.options.fetchMaxWaitMs, 200)
  assert.equal(parseGatewayConfig(['--fetch-max-wait-ms', '20'], base).options.fetchMaxWaitMs, 20)
  assert.equal(config.options.commandLingerMs, 0)
  assert.equal(parseGatewayConfig([], { ...base, WEIR_GATEWAY_COMMAND_LINGER_MS: '5' }).options.commandLingerMs, 5)
  assert.equal(config.options.auth.hs256Secret, 'h'.repeat(32))
  assert.equal(config.publicKey, undefined)
  const keyed = parseGatewayConfig(['--jwt-public-key-file', '/k.pem', '--jwt-algorithm', 'ES256'], { ...base, WEIR_JWT_HS256_SECRET: '' })
  assert.deepEqual(keyed.publicKey, { file: '/k.pem', algorithm: 'ES256' })
})

test('every configuration problem is reported at once', () => {
  assert.throws(
    () => parseGatewayConfig(['--port', 'x', '--deadlines', 'maybe', '--jwks-url', 'not a url'], {}),
    (error) => {
      assert.ok(isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS'))
      const violations = error.details.violations as string[]
      for (const needle of ['--catalog', '--session-secret', '--deadlines', '--port', '--jwks-url']) {
        assert.ok(violations.some((v) => v.includes(needle)), `${needle} in ${violations.join(' | ')}`)
      }
      return true
    },
  )
})

test("docs/gateway.md's service table names every setting: its flag (a secret by its variable only) and its variable", () => {
  const doc = readFileSync(new URL('../../docs/gateway.md', import.meta.url), 'utf8')
  const section = doc.slice(doc.indexOf('## The service'))
  const rows = section.split('\n').filter((line) => line.startsWith('| `')).join('\n')
  const tokens = new Set([...rows.matchAll(/`([^`]+)`/g)].map((m) => m[1]!))
  const missing: string[] = []
  for (const setting of gatewaySettings) {
    const isSecret = 'secret' in setting
    if (!isSecret && !tokens.has(`--${setting.flag}`)) missing.push(`--${setting.flag}`)
    if (isSecret && tokens.has(`--${setting.flag}`)) missing.push(`--${setting.flag} is a secret: the table shows its variable, not the flag`)
    // A cell names the first variable in full and the next ones by the part after the shared prefix (`_PORT`).
    const named = tokens.has(setting.env) || [...tokens].some((t) => t.startsWith('_') && setting.env.endsWith(t) && rows.includes(`\`${setting.env.slice(0, -t.length)}`))
    if (!named) missing.push(setting.env)
  }
  assert.deepEqual(missing, [], 'add these to the table in docs/gateway.md, "The service"')
})
