// The claim check on its own and inside the command service (test driver, file-system store): large payloads go
// by reference both ways, the scheduler and dead letters keep the reference, and bad references get coded errors.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import { createClaimCheck, PAYLOAD_CONTENT_TYPE } from '../../blobs/claim-check.ts'
import { createFsBlobStore } from '../../blobs/fs-blob-store.ts'
import { isWeirError } from '../../core/errors.ts'
import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { createCommandRegistry } from '../../processors/command-router.ts'
import { commandService } from '../../processors/command-service.ts'
import { createTestDriver } from '../../topology/test-driver.ts'

async function tempStore(t: { after(fn: () => Promise<void>): void }, name = 'fs') {
  const root = await mkdtemp(join(tmpdir(), 'weir-claim-'))
  t.after(() => rm(root, { recursive: true, force: true }))
  return { root, store: createFsBlobStore({ root, name }) }
}

const big = (bytes: number) => ({ blob: randomBytes(bytes), note: 'x' })

test('offload: small payloads stay inline, large ones become a verified reference that resolves to the same payload', async (t) => {
  const { store } = await tempStore(t)
  const check = createClaimCheck({ store, thresholdBytes: 1024 })
  const small = createEnvelope({ kind: 'event', contextPath: 'c', alias: 'a', payload: { n: 1 } })
  assert.equal(await check.offload(small), small)
  const large = createEnvelope({ kind: 'event', contextPath: 'c', alias: 'a', payload: big(4096) })
  const offloaded = await check.offload(large)
  assert.equal(offloaded.payload, null)
  assert.equal(offloaded.payloadRef?.store, 'fs')
  assert.equal(offloaded.payloadRef?.contentType, PAYLOAD_CONTENT_TYPE)
  assert.match(offloaded.payloadRef?.key ?? '', /^payloads\/[0-9a-f]{32}$/)
  // The reference survives the wire format, and the encoded envelope is small.
  const wire = encodeEnvelope(offloaded)
  assert.ok(wire.byteLength < 1024, `${wire.byteLength} bytes`)
  const back = await check.resolve(decodeEnvelope(wire))
  assert.deepEqual(back.payload, large.payload)
  assert.equal(back.payloadRef, undefined)
  assert.throws(() => createClaimCheck({ store, thresholdBytes: 0 }), (e: unknown) => isWeirError(e, 'WEIR_ERR_INVALID_OPTIONS'))
})

test('resolve refuses a tampered blob, a missing blob and a foreign store with coded errors', async (t) => {
  const { root, store } = await tempStore(t)
  const check = createClaimCheck({ store, thresholdBytes: 100 })
  const offloaded = await check.offload(createEnvelope({ kind: 'event', contextPath: 'c', alias: 'a', payload: big(1000) }))
  const ref = offloaded.payloadRef!
  await writeFile(join(root, ...ref.key.split('/')), Buffer.alloc(ref.size, 7))
  await assert.rejects(check.resolve(offloaded), (e: unknown) => isWeirError(e, 'WEIR_ERR_BLOB_INTEGRITY'))
  await store.delete(ref.key)
  await assert.rejects(check.resolve(offloaded), (e: unknown) => isWeirError(e, 'WEIR_ERR_BLOB_MISSING'))
  await assert.rejects(check.resolve({ ...offloaded, payloadRef: { ...ref, store: 'elsewhere' } }), (e: unknown) => isWeirError(e, 'WEIR_ERR_BLOB_FOREIGN'))
})

const topics = { commands: 'files.commands', results: 'files.results', events: 'files.events' }

function service(claimCheck: ReturnType<typeof createClaimCheck>, failures = 0) {
  let calls = 0
  const registry = createCommandRegistry({
    topicAlias: 'files',
    topics,
    handlers: [
      {
        contextPath: 'files',
        alias: 'store',
        payloadSchema: { type: 'object', required: ['blob'] },
        async handle(ctx: { payload: { blob: Buffer }; emit(alias: string, payload: unknown): void }) {
          calls++
          if (calls <= failures) throw new Error('transient')
          ctx.emit('stored', { copy: ctx.payload.blob })
          return { echo: ctx.payload.blob, size: ctx.payload.blob.byteLength }
        },
      },
    ],
  })
  return commandService({ registry, claimCheck, sleep: async () => {}, retry: { attempts: 1 }, outOfOrder: { attempts: 3, baseDelayMs: 10 } })
}

test('command service: a command by reference runs with its payload; its result and event go by reference', async (t) => {
  const { store } = await tempStore(t)
  const check = createClaimCheck({ store, thresholdBytes: 64 * 1024 })
  const s = service(check)
  const driver = await createTestDriver(s.topology, { errorPolicy: 'fail' })
  const payload = { blob: randomBytes(300 * 1024) }
  const command = await check.offload(createEnvelope({ kind: 'command', topicAlias: 'files', contextPath: 'files', alias: 'store', payload, now: driver.now() }))
  assert.ok(command.payloadRef)
  await driver.pipe('commands', { key: 'k', value: command })
  const [result] = driver.take(topics.results).map((o) => o.value as Envelope<{ echo: Buffer; size: number }>)
  assert.equal(result?.status, 'ok')
  assert.equal(result?.payload, null, 'the result went by reference')
  const resolved = await check.resolve(result!)
  assert.deepEqual(Buffer.from(resolved.payload.echo), payload.blob)
  const [event] = driver.take(topics.events).map((o) => o.value as Envelope<{ copy: Buffer }>)
  assert.ok(event?.payloadRef)
  assert.deepEqual(Buffer.from((await check.resolve(event!)).payload.copy), payload.blob)
})

test('command service: a tampered or missing blob is an error result and a dead letter that keeps the reference', async (t) => {
  const { root, store } = await tempStore(t)
  const check = createClaimCheck({ store, thresholdBytes: 1024 })
  const s = service(check)
  const driver = await createTestDriver(s.topology, { errorPolicy: 'fail' })
  for (const [damage, code] of [
    ['tamper', 'WEIR_ERR_BLOB_INTEGRITY'],
    ['delete', 'WEIR_ERR_BLOB_MISSING'],
  ] as const) {
    const command = await check.offload(createEnvelope({ kind: 'command', topicAlias: 'files', contextPath: 'files', alias: 'store', payload: { blob: randomBytes(4096) }, now: driver.now() }))
    const path = join(root, ...command.payloadRef!.key.split('/'))
    if (damage === 'tamper') await writeFile(path, Buffer.alloc(command.payloadRef!.size, 1))
    else await rm(path)
    await driver.pipe('commands', { key: 'k', value: command })
    const [result] = driver.take(topics.results).map((o) => o.value as Envelope<{ code: string }>)
    assert.equal(result?.status, 'error')
    assert.equal(result?.payload.code, code)
    const [letter] = driver.take(`${topics.commands}.dlq`)
    assert.equal(letter?.headers['weir.error.code'], code)
    assert.deepEqual(decodeEnvelope(letter?.value as Buffer).payloadRef, command.payloadRef, 'the dead letter keeps the reference')
  }
  assert.equal(s.metrics.router.badReferences, 2)
})

test('command service: an out-of-order retry of a command by reference keeps the reference in the scheduler topic', async (t) => {
  const { store } = await tempStore(t)
  const check = createClaimCheck({ store, thresholdBytes: 1024 })
  const s = service(check, 1)
  const driver = await createTestDriver(s.topology, { errorPolicy: 'fail' })
  const payload = { blob: randomBytes(8192) }
  const command = await check.offload(
    createEnvelope({ kind: 'command', topicAlias: 'files', contextPath: 'files', alias: 'store', payload, retry: { outOfOrder: true, count: 0 }, now: driver.now() }),
  )
  await driver.pipe('commands', { key: 'k', value: command })
  const [request] = driver.take(s.topics.scheduler)
  const scheduled = decodeEnvelope((request?.value as { value: Buffer }).value)
  assert.deepEqual(scheduled.payloadRef, command.payloadRef)
  assert.ok(encodeEnvelope(scheduled).byteLength < 2048)
  await driver.pipe('schedule', { key: request!.key, value: request!.value })
  await driver.advanceTime(60_000)
  for (const delivery of driver.take(topics.commands)) await driver.pipe('commands', { key: delivery.key, value: decodeEnvelope(delivery.value as Buffer) })
  const [result] = driver.take(topics.results).map((o) => o.value as Envelope<{ size: number }>)
  assert.equal(result?.status, 'ok')
  assert.equal((await check.resolve(result!)).payload.size, 8192)
})

test('command service without a blob store refuses a command by reference (WEIR_ERR_BLOB_FOREIGN)', async (t) => {
  const { store } = await tempStore(t)
  const check = createClaimCheck({ store, thresholdBytes: 1024 })
  const registry = createCommandRegistry({ topicAlias: 'files', topics, handlers: [{ contextPath: 'files', alias: 'store', payloadSchema: { type: 'object' }, handle: () => 'ran' }] })
  const s = commandService({ registry })
  const driver = await createTestDriver(s.topology, { errorPolicy: 'fail' })
  const command = await check.offload(createEnvelope({ kind: 'command', topicAlias: 'files', contextPath: 'files', alias: 'store', payload: { blob: randomBytes(4096) }, now: driver.now() }))
  await driver.pipe('commands', { key: 'k', value: command })
  const [result] = driver.take(topics.results).map((o) => o.value as Envelope<{ code: string }>)
  assert.equal(result?.payload.code, 'WEIR_ERR_BLOB_FOREIGN')
  assert.equal(driver.take(`${topics.commands}.dlq`).length, 1)
})
