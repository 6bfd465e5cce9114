// Client properties files as providers hand them out (Java client names), read into connection settings.
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { clientPropertiesFrom, kafkaFromEnvironment, loadClientProperties, parsePropertiesText } from '../../kafka/index.ts'

const fixture = (name: string) => new URL(`../fixtures/kafka/${name}`, import.meta.url).pathname

function refused(properties: Record<string, string>): string[] {
  try {
    clientPropertiesFrom(new Map(Object.entries(properties)), 'test.properties', '/nonexistent')
  } catch (error) {
    assert.ok(isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS'), String(error))
    return error.details.violations as string[]
  }
  assert.fail('the properties were accepted')
}

test("a Confluent Cloud client.properties parses: brokers, SASL PLAIN over TLS, client id, session timeout", () => {
  const parsed = loadClientProperties(fixture('confluent-cloud.properties'))
  assert.deepEqual(parsed.brokers, ['pkc-921jm.us-east-2.aws.confluent.cloud:9092'])
  assert.equal(parsed.clientId, 'ccloud-java-client-1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718')
  assert.equal(parsed.sessionTimeoutMs, 45_000)
  assert.equal(parsed.connection.tls, true)
  assert.deepEqual(parsed.connection.sasl, { mechanism: 'PLAIN', username: 'ABCDEFGH12345678', password: 'cflt/secret+Value==' })
})

test('an Aiven file with client certificates reads the PEM files relative to itself, and compression', () => {
  const parsed = loadClientProperties(fixture('aiven.properties'))
  const tls = parsed.connection.tls
  assert.ok(typeof tls === 'object')
  assert.match(String(tls.ca), /BEGIN CERTIFICATE/)
  assert.match(String(tls.cert), /BEGIN CERTIFICATE/)
  assert.match(String(tls.key), /BEGIN PRIVATE KEY/)
  assert.equal(parsed.connection.sasl, undefined)
  assert.equal(parsed.connection.compression, 'zstd')
})

test('SCRAM login modules give user name and password; a line continues after a backslash, quoted values keep ; = and spaces', () => {
  const parsed = clientPropertiesFrom(
    parsePropertiesText(
      [
        'bootstrap.servers=b-1.msk.example:9096,b-2.msk.example:9096',
        'security.protocol=SASL_SSL',
        'sasl.mechanism=SCRAM-SHA-512',
        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\',
        '    username="alice" password="p@ss;w=rd x";',
      ].join('\n'),
    ),
    'msk.properties',
  )
  assert.deepEqual(parsed.brokers, ['b-1.msk.example:9096', 'b-2.msk.example:9096'])
  assert.deepEqual(parsed.connection.sasl, { mechanism: 'SCRAM-SHA-512', username: 'alice', password: 'p@ss;w=rd x' })
})

test('unknown and unsupported keys are refused all at once, JKS stores with how to convert them to PEM', () => {
  const violations = refused({
    'bootstrap.servers': 'a:9092',
    'security.protocol': 'SASL_SSL',
    'sasl.mechanism': 'GSSAPI',
    'sasl.jaas.config': 'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="topsecret-42";',
    'ssl.truststore.location': '/etc/kafka/truststore.jks',
    'ssl.truststore.password': 'changeit-secret',
    'linger.ms': '5',
    'schema.registry.url': 'https://sr.example',
    'compression.type': 'brotli',
  })
  const all = violations.join('\n')
  assert.match(all, /unsupported keys: linger\.ms, schema\.registry\.url/)
  assert.match(all, /ssl\.truststore\.location, ssl\.truststore\.password: JKS\/PKCS12 .* convert them to PEM/)
  assert.match(all, /sasl\.mechanism must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512/)
  assert.match(all, /compression\.type must be one of none, gzip, snappy, lz4, zstd/)
  assert.ok(violations.length >= 4, all)
})

test('secrets never appear in an error, however the properties are wrong', () => {
  const secret = 'never-print-me-7f3a'
  let caught: unknown
  try {
    clientPropertiesFrom(
      new Map(Object.entries({
        'security.protocol': 'SASL_PLAINTEXT',
        'sasl.mechanism': 'SCRAM-SHA-256',
        'sasl.jaas.config': `org.example.UnknownLoginModule required username="u" password="${secret}";`,
        'sasl.password': secret,
        'ssl.key.password': secret,
      })),
      'x.properties',
    )
  } catch (error) {
    caught = error
  }
  assert.ok(isWeirError(caught, 'WEIR_ERR_INVALID_OPTIONS'))
  assert.match(JSON.stringify(caught), /UnknownLoginModule is not supported/)
  for (const rendering of [JSON.stringify(caught), inspect(caught, { depth: 10 }), (caught as Error).message]) assert.ok(!rendering.includes(secret), rendering)
})

test('OAUTHBEARER cannot come from a file (it needs a token callback), and SASL keys need a SASL protocol', () => {
  const violations = refused({ 'security.protocol': 'SASL_SSL', 'sasl.mechanism': 'OAUTHBEARER' }).join('\n')
  assert.match(violations, /OAUTHBEARER cannot come from a file/)
  const plaintext = refused({ 'sasl.mechanism': 'PLAIN', 'ssl.ca.location': 'ca.pem' }).join('\n')
  assert.match(plaintext, /sasl\.mechanism need security\.protocol SASL_SSL or SASL_PLAINTEXT/)
  assert.match(plaintext, /ssl\.ca\.location need security\.protocol SSL or SASL_SSL/)
})

test('KAFKA_BOOTSTRAP_SERVERS wins over the file, the file over the fallback; the file gives the security', () => {
  const file = fixture('confluent-cloud.properties')
  assert.deepEqual(kafkaFromEnvironment({ WEIR_KAFKA_CONFIG: file }).brokers, ['pkc-921jm.us-east-2.aws.confluent.cloud:9092'])
  const both = kafkaFromEnvironment({ WEIR_KAFKA_CONFIG: file, KAFKA_BOOTSTRAP_SERVERS: 'localhost:1' })
  assert.deepEqual(both.brokers, ['localhost:1'])
  assert.equal(both.connection?.sasl?.mechanism, 'PLAIN')
  assert.deepEqual(kafkaFromEnvironment({}).brokers, ['127.0.0.1:9092'])
})

test('weir worker and the gateway take --kafka-config / WEIR_KAFKA_CONFIG; its problems join the others', async () => {
  const { parseWorkerConfig } = await import('../../worker/config.ts')
  const { parseGatewayConfig } = await import('../../gateway/config.ts')
  const worker = parseWorkerConfig(['topology.ts', '--kafka-config', fixture('confluent-cloud.properties'), '--replication-factor', '3', '--min-insync-replicas', '2'], {})
  assert.deepEqual(worker.brokers, ['pkc-921jm.us-east-2.aws.confluent.cloud:9092'])
  assert.equal(worker.connection?.sasl?.mechanism, 'PLAIN')
  assert.equal(worker.sessionTimeoutMs, 45_000)
  assert.deepEqual(worker.replication, { replicationFactor: 3, minInsyncReplicas: 2 })
  const gateway = parseGatewayConfig(['--catalog', 'c.json', '--session-secret', 'x'.repeat(32), '--jwt-hs256-secret', 'y'.repeat(32)], {
    WEIR_KAFKA_CONFIG: fixture('aiven.properties'),
    KAFKA_BOOTSTRAP_SERVERS: 'override:9093',
  })
  assert.deepEqual(gateway.options.brokers, ['override:9093'])
  assert.equal(gateway.options.connection?.compression, 'zstd')

  const bad = fixture('bad.properties')
  let caught: unknown
  try {
    parseWorkerConfig(['topology.ts', '--kafka-config', bad, '--error-policy', 'explode'], {})
  } catch (error) {
    caught = error
  }
  assert.ok(isWeirError(caught, 'WEIR_ERR_INVALID_OPTIONS'))
  const violations = (caught.details.violations as string[]).join('\n')
  assert.match(violations, /--error-policy must be/)
  assert.match(violations, new RegExp(`--kafka-config ${bad}: unsupported keys: linger\\.ms, batch\\.size`))
  assert.match(violations, /--kafka-config .*ssl\.keystore\.location, ssl\.keystore\.password: JKS/)
  assert.ok(!violations.includes('keystore-secret'))
})
