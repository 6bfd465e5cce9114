// One conformance suite for every blob store (the file system, S3 against a real S3-compatible server).
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { test } from 'node:test'

import type { BlobStore } from '../../blobs/blob-store.ts'
import { isWeirError } from '../../core/errors.ts'

async function* chunksOf(bytes: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size)
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

export function blobStoreConformance(label: string, open: () => Promise<BlobStore>): void {
  test(`${label}: put bytes, get, read, list, delete`, async (t) => {
    const store = await open()
    t.after(() => store.close())
    const bytes = randomBytes(1000)
    const put = await store.put('a/one.bin', bytes, { contentType: 'application/msgpack' })
    assert.deepEqual(put, { size: 1000, sha256: sha(bytes) })
    assert.deepEqual(await store.get('a/one.bin'), bytes)
    const streamed: Buffer[] = []
    for await (const chunk of await store.read('a/one.bin')) streamed.push(chunk as Buffer)
    assert.deepEqual(Buffer.concat(streamed), bytes)
    await store.put('b/two.bin', Buffer.from('x'))
    const listed = []
    for await (const entry of store.list('a/')) listed.push(entry)
    assert.deepEqual(listed.map((e) => [e.key, e.size]), [['a/one.bin', 1000]])
    assert.ok(Math.abs(listed[0]!.lastModified - Date.now()) < 5 * 60_000, 'lastModified is the write time')
    const all = []
    for await (const entry of store.list()) all.push(entry.key)
    assert.deepEqual(all.sort(), ['a/one.bin', 'b/two.bin'])
    await store.delete('a/one.bin')
    await store.delete('a/one.bin')
    await assert.rejects(store.get('a/one.bin'), (e: unknown) => isWeirError(e, 'WEIR_ERR_BLOB_MISSING'))
  })

  test(`${label}: a streamed put of 12 MiB in small chunks stores every byte and hashes it`, async (t) => {
    const store = await open()
    t.after(() => store.close())
    const bytes = randomBytes(12 * 1024 * 1024 + 17)
    const put = await store.put('big/blob', chunksOf(bytes, 64 * 1024))
    assert.equal(put.size, bytes.length)
    assert.equal(put.sha256, sha(bytes))
    const back = await store.get('big/blob')
    assert.equal(sha(back), sha(bytes))
  })

  test(`${label}: a put over maxBytes is refused and leaves nothing`, async (t) => {
    const store = await open()
    t.after(() => store.close())
    const bytes = randomBytes(6 * 1024 * 1024)
    await assert.rejects(store.put('over/limit', chunksOf(bytes, 256 * 1024), { maxBytes: 1024 * 1024 }), (e: unknown) => isWeirError(e, 'WEIR_ERR_BLOB_TOO_LARGE'))
    await assert.rejects(store.put('over/small', randomBytes(100), { maxBytes: 10 }), (e: unknown) => isWeirError(e, 'WEIR_ERR_BLOB_TOO_LARGE'))
    const left = []
    for await (const entry of store.list('over/')) left.push(entry.key)
    assert.deepEqual(left, [])
  })

  test(`${label}: missing blobs and bad keys get coded errors`, async (t) => {
    const store = await open()
    t.after(() => store.close())
    await assert.rejects(store.get('nope/missing'), (e: unknown) => isWeirError(e, 'WEIR_ERR_BLOB_MISSING'))
    await assert.rejects(store.read('nope/missing'), (e: unknown) => isWeirError(e, 'WEIR_ERR_BLOB_MISSING'))
    for (const key of ['', '../x', 'a/../b', '/abs', 'a//b', 'sp ace']) {
      await assert.rejects(store.put(key, Buffer.from('x')), (e: unknown) => isWeirError(e, 'WEIR_ERR_INVALID_ARGUMENT'), key)
    }
  })
}
