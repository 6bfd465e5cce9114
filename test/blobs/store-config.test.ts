// A blob store from settings (blobs/store-config.ts), as `weir blobs collect` and the gateway service read them: none
// when no store is named, problems named by flag and no store made when there are any, a folder store, and an S3
// store on the test run's real S3-compatible server with its endpoint, region, prefix, name and credentials.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import type { BlobStoreSettings } from '../../blobs/store-config.ts'
import { blobStoreFrom } from '../../blobs/store-config.ts'
import { s3Options, s3StoreForTest } from './s3-helper.ts'

function problems(settings: BlobStoreSettings, env: NodeJS.ProcessEnv = {}, flagPrefix?: string): string[] {
  const violations: string[] = []
  const store = blobStoreFrom(settings, env, violations, flagPrefix)
  assert.equal(store, undefined, 'no store is made when the settings have a problem')
  return violations
}

test('no store named: none and no problem; store settings without a store are a problem naming the flags', () => {
  assert.deepEqual(problems({}), [])
  assert.deepEqual(problems({ s3Region: 'eu-west-1', storeName: 'shared' }), ['--s3-region, --store-name given without --fs-root or --s3-bucket'])
  assert.deepEqual(problems({ s3Endpoint: 'http://minio:9000' }, {}, '--blobs-'), ['--blobs-s3-endpoint given without --blobs-fs-root or --blobs-s3-bucket'])
})

test('two stores, S3 settings with a folder, a bad endpoint or prefix, half the credentials and a padded name are refused', () => {
  assert.deepEqual(problems({ fsRoot: '/a', s3Bucket: 'b' }, {}, '--blobs-'), ['--blobs-fs-root and --blobs-s3-bucket name two stores: give one'])
  assert.deepEqual(problems({ fsRoot: '/a', s3Prefix: 'weir/', s3Region: 'eu-west-1' }), ['--s3-region, --s3-prefix given with --fs-root (they are for --s3-bucket)'])
  assert.deepEqual(problems({ s3Bucket: 'b', s3Endpoint: 'minio:9000' }), ['--s3-endpoint is not an http(s) URL: minio:9000'])
  assert.deepEqual(problems({ s3Bucket: 'b', s3Endpoint: 'not a url' }), ['--s3-endpoint is not an http(s) URL: not a url'])
  assert.deepEqual(problems({ s3Bucket: 'b', s3Prefix: 'weir' }), ['--s3-prefix must end with / (segments of letters, digits, ., _, -): "weir"'])
  assert.deepEqual(problems({ s3Bucket: 'b' }, { WEIR_S3_SECRET_ACCESS_KEY: 'secret' }), ['set both WEIR_S3_ACCESS_KEY_ID and WEIR_S3_SECRET_ACCESS_KEY, or neither'])
  assert.deepEqual(problems({ fsRoot: '/a', storeName: ' fs' }), ['--store-name must not start or end with spaces: " fs"'])
  // Every problem at once, so an operator fixes them in one go.
  assert.equal(problems({ s3Bucket: 'b', s3Endpoint: 'x', s3Prefix: 'p' }, { WEIR_S3_ACCESS_KEY_ID: 'id' }).length, 3)
})

test('a folder store keeps blobs under its root, named fs or as given', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'weir-store-config-'))
  t.after(() => rm(root, { recursive: true, force: true }))
  const violations: string[] = []
  const store = blobStoreFrom({ fsRoot: root }, {}, violations)
  assert.deepEqual(violations, [])
  assert.equal(store?.name, 'fs')
  await store!.put('payloads/a1', Buffer.from('hello'))
  assert.deepEqual(await readdir(join(root, 'payloads')), ['a1'])
  assert.equal(blobStoreFrom({ fsRoot: root, storeName: 'one-box' }, {}, violations)?.name, 'one-box')
})

test('an S3 store reaches the real S3 server with the endpoint, region, prefix, name and credentials given', async (t) => {
  // The bucket is made through the test helper; the settings, as an operator gives them, do not create buckets.
  const options = s3Options(`cfg-${randomBytes(4).toString('hex')}`)
  const plain = s3StoreForTest(options.bucket.slice('weir-test-'.length))
  t.after(() => plain.close())
  await plain.put('marker', Buffer.from('m'))
  const env = { WEIR_S3_ACCESS_KEY_ID: options.credentials!.accessKeyId, WEIR_S3_SECRET_ACCESS_KEY: options.credentials!.secretAccessKey }
  const violations: string[] = []
  const store = blobStoreFrom({ s3Bucket: options.bucket, s3Endpoint: options.endpoint, s3Region: options.region, s3Prefix: 'weir/', storeName: 'shared' }, env, violations)
  assert.deepEqual(violations, [])
  assert.ok(store !== undefined)
  t.after(() => store.close())
  assert.equal(store.name, 'shared')
  const put = await store.put('payloads/b2', Buffer.from('large enough'), { contentType: 'application/msgpack' })
  assert.equal(put.size, 12)
  assert.equal((await store.get('payloads/b2')).toString(), 'large enough')
  // The prefix is a folder of the bucket: the unprefixed store sees the object under it.
  assert.equal((await plain.get('weir/payloads/b2')).toString(), 'large enough')
  // Wrong credentials reach the server and are refused by it: the settings' credentials are the ones used.
  const wrong = blobStoreFrom({ s3Bucket: options.bucket, s3Endpoint: options.endpoint, s3Prefix: 'weir/' }, { WEIR_S3_ACCESS_KEY_ID: 'nobody', WEIR_S3_SECRET_ACCESS_KEY: 'wrong' }, violations)
  t.after(() => wrong?.close())
  await assert.rejects(wrong!.get('payloads/b2'), (error: Error & { code?: string }) => error.code === 'WEIR_ERR_BLOB_STORE')
})
