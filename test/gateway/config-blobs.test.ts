// The gateway service's blob store settings (docs/gateway.md, "The service"; docs/payloads.md): none by default, a
// folder or an S3 bucket turns uploads on, the secret comes from the environment or a file, bad combinations are
// configuration problems, listed when the service exits 2; and the service started with --blobs-fs-root takes an
// upload and stops cleanly; with --blobs-s3-bucket it writes to the real S3 server.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { isWeirError } from '../../core/errors.ts'
import { parseGatewayConfig } from '../../gateway/config.ts'
import { closeAdmin } from '../helpers/kafka.ts'
import { s3Options, s3StoreForTest } from '../blobs/s3-helper.ts'
import { cleanups, createGatewayTopics, spawnGateway, token } from './helpers.ts'

const shared = cleanups()
after(async () => {
  await shared.run()
  await closeAdmin()
})

const base = { WEIR_GATEWAY_CATALOG: 'catalog.json', WEIR_SESSION_SECRET: 's'.repeat(32), WEIR_JWT_HS256_SECRET: 'h'.repeat(32) }

function violationsOf(run: () => unknown): string[] {
  try {
    run()
  } catch (error) {
    if (isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS') || isWeirError(error, 'WEIR_ERR_SECRET_ON_COMMAND_LINE')) return error.details.violations as string[]
    throw error
  }
  assert.fail('expected a configuration problem')
}

test('no store named: no blobs; a folder or a bucket: the store, limits and secret as given', async () => {
  assert.equal(parseGatewayConfig([], base).options.blobs, undefined)
  const fs = parseGatewayConfig(['--blobs-fs-root', '/var/blobs', '--blobs-max-upload-bytes', '1048576', '--blobs-spool-dir', '/var/spool'], { ...base, WEIR_GATEWAY_BLOBS_SECRET: 'b'.repeat(32) }).options.blobs
  assert.equal(fs?.store.name, 'fs')
  assert.equal(fs?.maxUploadBytes, 1048576)
  assert.equal(fs?.linkTtlMs, 60_000)
  assert.equal(fs?.spoolDir, '/var/spool')
  assert.equal(Buffer.from(fs?.secret ?? []).toString(), 'b'.repeat(32))
  const s3 = parseGatewayConfig([], { ...base, WEIR_GATEWAY_BLOBS_S3_BUCKET: 'payloads', WEIR_GATEWAY_BLOBS_S3_ENDPOINT: 'http://minio:9000', WEIR_GATEWAY_BLOBS_STORE_NAME: 'shared' }).options.blobs
  assert.equal(s3?.store.name, 'shared')
  assert.equal(s3?.secret, undefined, 'no secret given: the gateway picks a random one per process')
  await s3?.store.close()
  const dir = await mkdtemp(join(tmpdir(), 'weir-gw-blobs-'))
  shared.after(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'secret'), `${'f'.repeat(40)}\n`, { mode: 0o600 })
  const fromFile = parseGatewayConfig(['--blobs-fs-root', dir, '--blobs-secret-file', join(dir, 'secret')], base).options.blobs
  assert.equal(Buffer.from(fromFile?.secret ?? []).toString(), 'f'.repeat(40))
})

test('two stores, settings without a store, a short secret, a bad endpoint and a secret on the command line are refused', () => {
  const two = violationsOf(() => parseGatewayConfig(['--blobs-fs-root', '/a', '--blobs-s3-bucket', 'b'], base))
  assert.ok(two.some((v) => v.includes('--blobs-fs-root and --blobs-s3-bucket')), two.join(' | '))
  const stray = violationsOf(() => parseGatewayConfig(['--blobs-max-upload-bytes', '10', '--blobs-s3-region', 'eu-west-1'], base))
  assert.ok(stray.some((v) => v.includes('--blobs-s3-region') && v.includes('without')), stray.join(' | '))
  const strayOnly = violationsOf(() => parseGatewayConfig(['--blobs-spool-dir', '/tmp'], base))
  assert.ok(strayOnly.some((v) => v.includes('--blobs-spool-dir given without a blob store')), strayOnly.join(' | '))
  const short = violationsOf(() => parseGatewayConfig(['--blobs-fs-root', '/a'], { ...base, WEIR_GATEWAY_BLOBS_SECRET: 'short' }))
  assert.ok(short.some((v) => v.includes('at least 32 bytes')), short.join(' | '))
  const endpoint = violationsOf(() => parseGatewayConfig(['--blobs-s3-bucket', 'b', '--blobs-s3-endpoint', 'not a url'], base))
  assert.ok(endpoint.some((v) => v.includes('--blobs-s3-endpoint is not an http(s) URL')), endpoint.join(' | '))
  const limits = violationsOf(() => parseGatewayConfig(['--blobs-fs-root', '/a', '--blobs-max-upload-bytes', '0', '--blobs-link-ttl-ms', '5'], base))
  assert.ok(limits.some((v) => v.includes('blobs-max-upload-bytes')) && limits.some((v) => v.includes('blobs-link-ttl-ms')), limits.join(' | '))
  const secretWithoutStore = violationsOf(() => parseGatewayConfig([], { ...base, WEIR_GATEWAY_BLOBS_SECRET: 'b'.repeat(32) }))
  assert.ok(secretWithoutStore.some((v) => v.includes('WEIR_GATEWAY_BLOBS_SECRET given without a blob store')), secretWithoutStore.join(' | '))
  const credentials = violationsOf(() => parseGatewayConfig(['--blobs-s3-bucket', 'b'], { ...base, WEIR_S3_ACCESS_KEY_ID: 'id' }))
  assert.ok(credentials.some((v) => v.includes('WEIR_S3_SECRET_ACCESS_KEY')), credentials.join(' | '))
  assert.throws(
    () => parseGatewayConfig(['--blobs-fs-root', '/a', '--blobs-secret', 'x'.repeat(32)], base),
    (error) => isWeirError(error, 'WEIR_ERR_SECRET_ON_COMMAND_LINE') && (error.details.flags as string[]).includes('--blobs-secret'),
  )
})

test('the gateway service exits 2 listing every blob problem, the blob secret on its command line among them', async () => {
  const main = fileURLToPath(new URL('../../gateway/main.ts', import.meta.url))
  const child = spawn(process.execPath, [main, '--catalog', 'c.json', '--blobs-fs-root', '/a', '--blobs-s3-bucket', 'b', '--blobs-link-ttl-ms', '10', '--blobs-secret', 'x'.repeat(32)], {
    env: { ...process.env, ...base },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  assert.equal(code, 2, stderr)
  assert.match(stderr, /WEIR_ERR_SECRET_ON_COMMAND_LINE/)
  assert.match(stderr, /--blobs-secret is refused.*WEIR_GATEWAY_BLOBS_SECRET or --blobs-secret-file/)
  assert.match(stderr, /- --blobs-fs-root and --blobs-s3-bucket name two stores: give one/)
  assert.match(stderr, /- --blobs-link-ttl-ms must be an integer >= 1000/)
  assert.match(stderr, /\(environment only\)\s+WEIR_GATEWAY_BLOBS_SECRET/, 'the usage lists the blob secret as environment only')
})

test('the gateway service with --blobs-fs-root takes an upload and answers with a signed reference', async () => {
  const topics = await createGatewayTopics(shared)
  const root = await mkdtemp(join(tmpdir(), 'weir-gw-blobs-'))
  shared.after(() => rm(root, { recursive: true, force: true }))
  const gateway = await spawnGateway(shared, topics, { WEIR_GATEWAY_BLOBS_FS_ROOT: root, WEIR_GATEWAY_BLOBS_SECRET: 'g'.repeat(32), WEIR_GATEWAY_BLOBS_MAX_UPLOAD_BYTES: '4096' })
  const jwt = await token({ sub: 'alice' })
  const upload = await fetch(`http://127.0.0.1:${gateway.port}/blobs`, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/octet-stream' }, body: new Uint8Array(3000).fill(7) })
  assert.equal(upload.status, 201)
  const { payloadRef } = (await upload.json()) as { payloadRef: { store: string; key: string; size: number; sig: string } }
  assert.equal(payloadRef.store, 'fs')
  assert.equal(payloadRef.size, 3000)
  assert.match(payloadRef.sig, /^[A-Za-z0-9_-]+$/)
  assert.deepEqual(await readdir(join(root, 'payloads')), [payloadRef.key.slice('payloads/'.length)])
  const tooLarge = await fetch(`http://127.0.0.1:${gateway.port}/blobs`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` }, body: new Uint8Array(5000) })
  assert.equal(tooLarge.status, 413)
  // SIGTERM stops it cleanly, the store it made from its configuration closed with it.
  gateway.child.kill('SIGTERM')
  assert.equal(await gateway.exited, 0)
  assert.ok(gateway.logs.some((line) => line.includes('gateway stopped')), gateway.logs.join('\n'))
})

test('the gateway service with --blobs-s3-bucket writes an upload to the real S3 server, under its prefix and store name', async () => {
  const topics = await createGatewayTopics(shared)
  // The bucket is made by the test's own store; the service, as an operator runs it, does not create buckets.
  const bucket = s3Options(`gw-${randomBytes(4).toString('hex')}`)
  const plain = s3StoreForTest(bucket.bucket.slice('weir-test-'.length))
  shared.after(() => plain.close())
  await plain.put('marker', Buffer.from('m'))
  const gateway = await spawnGateway(shared, topics, {
    WEIR_GATEWAY_BLOBS_S3_BUCKET: bucket.bucket,
    WEIR_GATEWAY_BLOBS_S3_ENDPOINT: bucket.endpoint!,
    WEIR_GATEWAY_BLOBS_S3_PREFIX: 'gw/',
    WEIR_GATEWAY_BLOBS_STORE_NAME: 'shared',
    WEIR_GATEWAY_BLOBS_SECRET: 'g'.repeat(32),
  })
  const jwt = await token({ sub: 'alice' })
  const body = randomBytes(70_000)
  const upload = await fetch(`http://127.0.0.1:${gateway.port}/blobs`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` }, body })
  assert.equal(upload.status, 201, await upload.clone().text())
  const { payloadRef } = (await upload.json()) as { payloadRef: { store: string; key: string; size: number; sha256: string } }
  assert.equal(payloadRef.store, 'shared')
  assert.equal(payloadRef.size, body.length)
  assert.equal(payloadRef.sha256, createHash('sha256').update(body).digest('hex'))
  assert.ok((await plain.get(`gw/${payloadRef.key}`)).equals(body), 'the bytes are in the bucket under the prefix')
})
