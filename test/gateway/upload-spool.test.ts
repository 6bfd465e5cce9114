// The upload spool (gateway/upload-spool.ts): the body comes out whole and in order whether it waited in memory,
// on disk or both, memory never holds more than its bound, the file is gone when the spool closes, and a failure
// ends the body with its error.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate as tick } from 'node:timers/promises'
import { after, test } from 'node:test'

import { createUploadSpool } from '../../gateway/upload-spool.ts'

const dir = await mkdtemp(join(tmpdir(), 'weir-spool-'))
after(() => rm(dir, { recursive: true, force: true }))

function chunkOf(i: number, size: number): ArrayBuffer {
  const bytes = new Uint8Array(size)
  for (let j = 0; j < size; j++) bytes[j] = (i * 31 + j) % 251
  return bytes.buffer
}

async function drain(body: AsyncIterable<Uint8Array>, slowEvery = 0): Promise<string> {
  const hash = createHash('sha256')
  let n = 0
  for await (const chunk of body) {
    hash.update(chunk)
    if (slowEvery > 0 && ++n % slowEvery === 0) await new Promise((r) => setTimeout(r, 1))
  }
  return hash.digest('hex')
}

test('a body faster than its reader spills to disk, stays in order and leaves memory bounded', async () => {
  const spilling: boolean[] = []
  const spool = createUploadSpool({ memoryBytes: 64 * 1024, dir, onSpilling: (s) => spilling.push(s) })
  const expected = createHash('sha256')
  const reading = drain(spool.body(), 4)
  // Bursts of 40 chunks of 16 KiB with a turn of the loop between: the reader takes a little of each burst.
  for (let burst = 0; burst < 20; burst++) {
    for (let i = 0; i < 40; i++) {
      const chunk = chunkOf(burst * 40 + i, 16 * 1024)
      expected.update(new Uint8Array(chunk))
      spool.push(chunk, burst === 19 && i === 39)
    }
    await tick()
  }
  assert.equal(await reading, expected.digest('hex'))
  assert.ok(spool.maxMemoryBytes <= 64 * 1024, `memory bound held (${spool.maxMemoryBytes})`)
  assert.ok(spool.spilledBytes > 0, 'some of it went through the file')
  assert.equal(spilling[0], true)
  spool.close()
  assert.deepEqual(await readdir(dir), [], 'the spool file was unlinked at once')
})

test('a reader that keeps up never touches the disk; an empty last chunk ends the body', async () => {
  const spool = createUploadSpool({ memoryBytes: 1024 * 1024, dir })
  const reading = drain(spool.body())
  const expected = createHash('sha256')
  for (let i = 0; i < 10; i++) {
    const chunk = chunkOf(i, 8 * 1024)
    expected.update(new Uint8Array(chunk))
    spool.push(chunk, false)
    await tick()
  }
  spool.push(new ArrayBuffer(0), true)
  assert.equal(await reading, expected.digest('hex'))
  assert.equal(spool.spilledBytes, 0)
  spool.close()
})

test('a failure ends the body with its error, and later chunks are refused', async () => {
  const spool = createUploadSpool({ memoryBytes: 1024, dir })
  spool.push(chunkOf(0, 4096), false)
  const reading = drain(spool.body())
  spool.fail(new Error('aborted by the client'))
  await assert.rejects(reading, /aborted by the client/)
  assert.equal(spool.push(chunkOf(1, 10), true), false)
  spool.close()
})

test('a spool folder that cannot be written fails the body with WEIR_ERR_BLOB_STORE', async () => {
  const spool = createUploadSpool({ memoryBytes: 10, dir: join(dir, 'missing', 'folder') })
  assert.equal(spool.push(chunkOf(0, 100), false), false)
  await assert.rejects(drain(spool.body()), (error: unknown) => (error as { code?: string }).code === 'WEIR_ERR_BLOB_STORE')
  spool.close()
})
