// Connection settings: validation (every problem at once, no secret quoted) and the OAUTHBEARER token refresh.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { COMPRESSION_TYPES, createAdmin, createProducer, refreshingTokenProvider } from '../../kafka/index.ts'
import { brokers, closeAdmin, createTopics, readAll } from '../helpers/kafka.ts'

after(closeAdmin)

test('bad connection settings are refused at construction, all at once, without quoting secrets', () => {
  let caught: unknown
  try {
    createAdmin({
      brokers: ['127.0.0.1:9092'],
      connection: { tls: { cert: 'PEM', serverName: '' }, sasl: { mechanism: 'GSSAPI', password: 'hidden-secret-1' }, compression: 'brotli', extra: 1 } as never,
    })
  } catch (error) {
    caught = error
  }
  assert.ok(isWeirError(caught, 'WEIR_ERR_INVALID_OPTIONS'))
  const violations = (caught.details.violations as string[]).join('\n')
  assert.match(violations, /connection\.extra is not a connection setting/)
  assert.match(violations, /cert and connection\.tls\.key go together/)
  assert.match(violations, /serverName must be a non-empty string/)
  assert.match(violations, /sasl\.mechanism must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER/)
  assert.match(violations, /compression must be one of none, gzip, snappy, lz4, zstd/)
  assert.ok(!JSON.stringify(caught).includes('hidden-secret-1'))
})

test('the OAUTHBEARER token is asked for again once 80% of its lifetime passed, and shared meanwhile', async () => {
  let clock = 1_000_000
  let calls = 0
  const token = refreshingTokenProvider(() => {
    calls++
    return { value: `token-${calls}`, expiresAtMs: clock + 10_000 }
  }, () => clock)
  assert.deepEqual(await Promise.all([token(), token()]), ['token-1', 'token-1'])
  clock += 7_999
  assert.equal(await token(), 'token-1')
  clock += 2
  assert.equal(await token(), 'token-2')
  assert.equal(calls, 2)
})

test('a token provider that returns nothing usable fails the authentication with a clear message', async () => {
  const token = refreshingTokenProvider(() => ({ value: '', expiresAtMs: Number.NaN }))
  await assert.rejects(token(), /must return \{ value: string, expiresAtMs: number \}/)
})

test('every compression type writes batches the reader reads back', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'compression', partitions: 1 })
  assert.ok(topic !== undefined)
  for (const compression of COMPRESSION_TYPES) {
    const producer = createProducer({ brokers: brokers(), clientId: `compression-${compression}`, connection: { compression } })
    try {
      await producer.send(Array.from({ length: 20 }, (_, i) => ({ topic, key: `k${i}`, value: `${compression}-${i}-${'x'.repeat(200)}` })))
    } finally {
      await producer.close()
    }
  }
  const values = (await readAll(topic)).map((r) => r.value?.toString().split('-').slice(0, 2).join('-'))
  assert.deepEqual(values, COMPRESSION_TYPES.flatMap((c) => Array.from({ length: 20 }, (_, i) => `${c}-${i}`)))
})
