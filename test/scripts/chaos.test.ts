// `npm run chaos` refuses options that would make a run prove nothing (no kills, no records, not a number),
// with a coded error listing every violation, before it starts anything.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { test } from 'node:test'

const SCRIPT = resolve(import.meta.dirname, '../../scripts/chaos.ts')

function chaos(...args: string[]) {
  // No broker is reachable at this address: a run that got past validation would fail differently.
  return spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1' }, timeout: 60_000 })
}

test('--kills 0 is refused with WEIR_ERR_INVALID_OPTIONS', () => {
  const result = chaos('--kills', '0')
  assert.equal(result.status, 2, result.stderr)
  assert.match(result.stderr, /WEIR_ERR_INVALID_OPTIONS/)
  assert.match(result.stderr, /--kills must be an integer >= 1, got "0"/)
})

test('every violation is reported at once: zero, not a number, a fraction, an exponent, empty', () => {
  const result = chaos('--records', '0', '--workers', 'NaN', '--partitions', '1.5', '--kills', '1e3', '--requests', '', '--cs-workers=-1')
  assert.equal(result.status, 2, result.stderr)
  assert.match(result.stderr, /WEIR_ERR_INVALID_OPTIONS/)
  for (const [name, value] of [['records', '0'], ['workers', 'NaN'], ['partitions', '1.5'], ['kills', '1e3'], ['requests', ''], ['cs-workers', '-1']]) {
    assert.ok(result.stderr.includes(`--${name} must be an integer >= 1, got "${value}"`), `${name}: ${result.stderr}`)
  }
})

test('an unknown option is refused with WEIR_ERR_INVALID_OPTIONS', () => {
  const result = chaos('--kill', '3')
  assert.equal(result.status, 2, result.stderr)
  assert.match(result.stderr, /WEIR_ERR_INVALID_OPTIONS/)
  assert.match(result.stderr, /--kill/)
})

test('--broker-kills must be an integer >= 0 and needs --brokers 3 or more; --brokers 0 is refused', () => {
  const result = chaos('--broker-kills=-1', '--brokers', '0')
  assert.equal(result.status, 2, result.stderr)
  assert.match(result.stderr, /WEIR_ERR_INVALID_OPTIONS/)
  assert.ok(result.stderr.includes('--broker-kills must be an integer >= 0, got "-1"'), result.stderr)
  assert.ok(result.stderr.includes('--brokers must be an integer >= 1, got "0"'), result.stderr)
  const small = chaos('--broker-kills', '2', '--brokers', '2')
  assert.equal(small.status, 2, small.stderr)
  assert.match(small.stderr, /--broker-kills needs --brokers 3 or more/)
  const fraction = chaos('--broker-kills', '1.5')
  assert.equal(fraction.status, 2, fraction.stderr)
  assert.ok(fraction.stderr.includes('--broker-kills must be an integer >= 0, got "1.5"'), fraction.stderr)
})

test('--kafka-config is for an external cluster: with --brokers 3 (a local cluster of its own) it is refused', () => {
  const result = chaos('--kafka-config', 'client.properties', '--brokers', '3')
  assert.equal(result.status, 2, result.stderr)
  assert.match(result.stderr, /WEIR_ERR_INVALID_OPTIONS/)
  assert.ok(result.stderr.includes('--kafka-config is for an external cluster'), result.stderr)
})

test('--max-in-flight must be an integer from 1 to 10000 and --io-max-ms an integer >= 0', () => {
  const result = chaos('--max-in-flight', '0', '--io-max-ms', '1.5')
  assert.equal(result.status, 2, result.stderr)
  assert.match(result.stderr, /WEIR_ERR_INVALID_OPTIONS/)
  assert.ok(result.stderr.includes('--max-in-flight must be an integer from 1 to 10000, got "0"'), result.stderr)
  assert.ok(result.stderr.includes('--io-max-ms must be an integer >= 0, got "1.5"'), result.stderr)
})
