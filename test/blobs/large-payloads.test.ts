// The done-when test of the claim check, end to end against a real broker and the real S3 server (S3Proxy): a
// 20 MiB command payload from the SDK through the gateway (HTTP upload) to a handler, and a 20 MiB result back
// (download link); then the same command with its blob tampered is refused with WEIR_ERR_BLOB_INTEGRITY and
// dead-lettered with its reference.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'

import { createClaimCheck } from '../../blobs/claim-check.ts'
import { decodeEnvelope, encodeEnvelope } from '../../envelope/codec.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { connect } from '../../gateway/client.ts'
import type { EventFrame } from '../../gateway/protocol.ts'
import { createCommandRegistry } from '../../processors/command-router.ts'
import { commandService, commandServiceTopics } from '../../processors/command-service.ts'
import { openStore } from '../../state/open-store.ts'
import { createStreamRuntime } from '../../topology/runtime/stream-runtime.ts'
import { admin, brokers, closeAdmin, produce, readAll, uniqueName } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { cleanups, startGateway, token } from '../gateway/helpers.ts'
import { s3StoreForTest } from './s3-helper.ts'

const shared = cleanups()
after(async () => {
  await shared.run()
  await closeAdmin()
})

const MiB = 1024 * 1024
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

test('20 MiB command payload through the gateway to a handler and a 20 MiB result back, over S3; a tampered blob is refused with a coded error', async () => {
  const prefix = uniqueName('blobs-e2e')
  const store = s3StoreForTest(prefix)
  shared.after(() => store.close())
  const topics = { commands: `${prefix}.commands`, results: `${prefix}.results`, events: `${prefix}.events` }
  const registry = createCommandRegistry({
    topicAlias: 'files',
    topics,
    handlers: [
      {
        contextPath: 'files',
        alias: 'reverse',
        payloadSchema: { type: 'object', required: ['data'] },
        handle: ({ payload, emit }: { payload: { data: Uint8Array }; emit(alias: string, payload: unknown): void }) => {
          // An event over the threshold too: it reaches subscribers by reference.
          emit('head', { head: payload.data.subarray(0, 512 * 1024) })
          return { reversed: Buffer.from(payload.data).reverse(), sha256: sha(payload.data) }
        },
      },
    ],
  })
  const service = commandService({ registry, claimCheck: createClaimCheck({ store }), retry: { attempts: 1 } })
  const names = commandServiceTopics(registry)
  await admin().createTopics([...new Set(Object.values(names))].map((name) => ({ name, partitions: 1 })))
  shared.after(async () => {
    const mine = (await admin().listTopics()).filter((name) => name.startsWith(prefix))
    await admin().deleteTopics(mine).catch(() => {})
  })
  const stateDir = await mkdtemp(join(tmpdir(), 'weir-blobs-e2e-'))
  const runtime = createStreamRuntime({ applicationId: `${prefix}-service`, topology: service.topology, brokers: brokers(), stateDir, openStore, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500 })
  shared.after(async () => {
    await runtime.stop()
    await rm(stateDir, { recursive: true, force: true })
  })
  await runtime.start()
  const gateway = await startGateway(shared, { catalog: registry.catalog, blobs: { store } })

  const client = await connect({ url: `ws://127.0.0.1:${gateway.port}/ws`, token: await token({ sub: 'alice' }) })
  shared.after(() => client.close())
  const events: EventFrame[] = []
  client.subscribe('files', (event) => events.push(event))
  const data = randomBytes(20 * MiB)
  const result = await client.send('files/files/reverse', { data }, { ttlMs: 120_000, requestId: 'big-1' })
  assert.equal(result.status, 'ok')
  const payload = result.payload as { reversed: Uint8Array; sha256: string }
  assert.equal(payload.sha256, sha(data), 'the handler saw the 20 MiB payload')
  assert.equal(payload.reversed.byteLength, 20 * MiB)
  assert.equal(sha(Buffer.from(payload.reversed).reverse()), sha(data), 'the 20 MiB result came back whole')
  const [event] = await waitFor(() => (events.length > 0 ? events : undefined), { what: 'the head event' })
  assert.equal(event?.payloadRef, undefined, 'the SDK resolved the event')
  assert.deepEqual(Buffer.from((event?.payload as { head: Uint8Array }).head), data.subarray(0, 512 * 1024))

  // Both directions went by reference: the records are small.
  const [commandRecord] = await readAll(topics.commands)
  const command = decodeEnvelope(commandRecord!.value!)
  assert.ok(command.payloadRef, 'the command record carries a reference')
  assert.ok(commandRecord!.value!.byteLength < 4096)
  const outcome = (await readAll(topics.results)).map((r) => decodeEnvelope(r.value!)).find((e) => e.requestId === 'big-1')
  assert.ok(outcome?.payloadRef, 'the result record carries a reference')

  // The same command again with its blob tampered (same size, other bytes): refused, dead-lettered with its reference.
  await store.put(command.payloadRef!.key, randomBytes(command.payloadRef!.size))
  const again: Envelope = { ...command, id: `${command.id}-again`, requestId: 'big-tampered' }
  await produce([{ topic: topics.commands, key: 'k', value: encodeEnvelope(again) }])
  const refused = await waitFor(
    async () => (await readAll(topics.results)).map((r) => decodeEnvelope(r.value!)).find((e) => e.requestId === 'big-tampered'),
    { timeoutMs: 60_000, what: 'the error result of the tampered command' },
  )
  assert.equal(refused.status, 'error')
  assert.equal((refused.payload as { code: string }).code, 'WEIR_ERR_BLOB_INTEGRITY')
  const letters = await waitFor(async () => {
    const found = await readAll(`${topics.commands}.dlq`)
    return found.length > 0 ? found : undefined
  }, { timeoutMs: 60_000, what: 'the dead letter' })
  assert.equal(letters[0]?.headers.get('weir.error.code')?.toString(), 'WEIR_ERR_BLOB_INTEGRITY')
  assert.deepEqual(decodeEnvelope(letters[0]!.value!).payloadRef, command.payloadRef)
})
