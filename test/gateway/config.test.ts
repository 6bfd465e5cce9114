// The gateway service's configuration: flags over environment over defaults, every problem at once.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { parseGatewayConfig } from '../../gateway/config.ts'

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
