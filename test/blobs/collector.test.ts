// The orphan collector against a real broker and the real S3 server: a blob whose transaction aborted is
// collected once the grace period is over; a committed reference keeps its blob, in a plain envelope and nested
// in a scheduled one; a young blob is kept whatever the topics say.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'

import { createClaimCheck } from '../../blobs/claim-check.ts'
import { collectOrphanBlobs } from '../../blobs/collector.ts'
import { createFsBlobStore } from '../../blobs/fs-blob-store.ts'
import { encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import { createProducer } from '../../kafka/index.ts'
import { blobsMain } from '../../worker/blobs-cli.ts'
import { clientOptions, closeAdmin, createTopics, produce, uniqueName } from '../helpers/kafka.ts'
import { s3StoreForTest } from './s3-helper.ts'

after(closeAdmin)

test("an aborted transaction's blob is collected after the grace period; referenced and young blobs stay", async (t) => {
  const store = s3StoreForTest(`collect-${randomBytes(4).toString('hex')}`)
  t.after(() => store.close())
  const check = createClaimCheck({ store, thresholdBytes: 1024 })
  const [results, scheduler] = await createTopics(t, { prefix: 'blob-results', partitions: 2 }, { prefix: 'blob-scheduler', partitions: 1 })
  const envelope = () => check.offload(createEnvelope({ kind: 'result', contextPath: 'c', alias: 'a', status: 'ok', payload: { blob: randomBytes(4096) } }))
  const committed = await envelope()
  const nested = await envelope()
  const aborted = await envelope()
  const producer = createProducer({ ...clientOptions(), clientId: uniqueName('blob-tx'), transactionalId: uniqueName('blob-tx') })
  t.after(() => producer.close())
  let tx = await producer.beginTransaction()
  await tx.send([{ topic: results!, key: 'a', value: encodeEnvelope(committed) }])
  // A reference inside another record's bytes (a scheduled envelope) counts as well.
  await tx.send([{ topic: scheduler!, key: 'b', value: Buffer.concat([Buffer.from([0x92, 0xc4]), encodeEnvelope(nested)]) }])
  await tx.commit()
  tx = await producer.beginTransaction()
  await tx.send([{ topic: results!, key: 'c', value: encodeEnvelope(aborted) }])
  await tx.abort()
  const topics = [results!, scheduler!]
  const keys = [committed, nested, aborted].map((e) => e.payloadRef!.key)

  const withinGrace = await collectOrphanBlobs({ store, topics, ...clientOptions(), graceMs: 60 * 60_000 })
  assert.deepEqual(withinGrace.deleted, [], 'nothing is collected within the grace period')
  assert.equal(withinGrace.blobs, 3)

  const report = await collectOrphanBlobs({ store, topics, ...clientOptions(), graceMs: 0, now: () => Date.now() + 1000 })
  assert.deepEqual(report.deleted, [keys[2]], "only the aborted transaction's blob")
  assert.equal(report.recordsRead, 2, 'the aborted record is not read')
  assert.ok(report.referenced >= 2)
  await check.resolve(committed)
  await check.resolve(nested)
  await assert.rejects(check.resolve(aborted), (e: unknown) => (e as { code?: string }).code === 'WEIR_ERR_BLOB_MISSING')
})

test('weir blobs collect: --dry-run reports the orphan, the real run deletes it, bad arguments exit 2', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'weir-collect-cli-'))
  t.after(() => rm(root, { recursive: true, force: true }))
  const store = createFsBlobStore({ root })
  const check = createClaimCheck({ store, thresholdBytes: 100 })
  const [topic] = await createTopics(t, { prefix: 'blob-cli', partitions: 1 })
  const kept = await check.offload(createEnvelope({ kind: 'event', contextPath: 'c', alias: 'a', payload: randomBytes(500) }))
  const orphan = await check.offload(createEnvelope({ kind: 'event', contextPath: 'c', alias: 'a', payload: randomBytes(500) }))
  await produce([{ topic: topic!, key: 'k', value: encodeEnvelope(kept) }])
  const args = ['collect', '--topic', topic!, '--fs-root', root, '--grace-ms', '0', '--brokers', clientOptions().brokers.join(',')]
  const exists = async (key: string) => (await store.get(key).then(() => true, () => false))
  assert.equal(await blobsMain([...args, '--dry-run']), 0)
  assert.ok(await exists(orphan.payloadRef!.key), 'a dry run deletes nothing')
  assert.equal(await blobsMain(args), 0)
  assert.ok(!(await exists(orphan.payloadRef!.key)), 'the orphan is deleted')
  assert.ok(await exists(kept.payloadRef!.key), 'the referenced blob stays')
  assert.equal(await blobsMain(['collect', '--fs-root', root]), 2)
  assert.equal(await blobsMain(['collect', '--topic', topic!, '--brokers', 'x:1']), 2)
})
