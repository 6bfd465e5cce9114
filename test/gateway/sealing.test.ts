// Result encryption: a client that registers a P-256 public key gets its results sealed with AES-256-GCM
// under a key only it and this socket's gateway share (docs/protocol.md, "Result encryption").
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { isWeirError } from '../../core/errors.ts'
import { connect } from '../../gateway/client.ts'
import { SEALING_INFO, fromBase64Url, sealingAad, toBase64Url, unpackValue } from '../../gateway/protocol.ts'
import type { ResultFrame } from '../../gateway/protocol.ts'
import { closeAdmin } from '../helpers/kafka.ts'
import { createGatewayTopics, openSocket, rejectedUpgrade, startGateway, startTestWorker, testCatalog, token } from './helpers.ts'

after(closeAdmin)

const subtle = globalThis.crypto.subtle
type Bytes = Uint8Array<ArrayBuffer>

test('sealed results: only the registering socket gets ciphertext it alone can open; the SDK decrypts', async (t) => {
  const topics = await createGatewayTopics(t)
  const worker = await startTestWorker(t, topics)
  const gateway = await startGateway(t, { catalog: testCatalog(topics) })
  const nonce = 'sealed-nonce-0123456789'
  const aliceToken = await token({ sub: 'alice' })

  // Follow the documented scheme by hand: ECDH P-256, HKDF-SHA-256 (salt: session id), AES-256-GCM with AAD.
  const pair = (await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits'])) as CryptoKeyPair
  const publicKey = toBase64Url(new Uint8Array(await subtle.exportKey('raw', pair.publicKey)))
  const sealed = await openSocket(t, gateway.port, { token: aliceToken, session: nonce, key: publicKey })
  const plain = await openSocket(t, gateway.port, { token: aliceToken, session: nonce })
  const welcome = await sealed.expect('welcome')
  assert.equal(welcome.sealing?.alg, 'ECDH-ES+A256GCM')
  assert.equal((await plain.expect('welcome')).sealing, undefined)
  for (const socket of [sealed, plain]) {
    socket.send({ type: 'resume', offsets: [] })
    await socket.expect('resumed')
  }
  sealed.send({ type: 'command', path: 'orders/sales/place', requestId: 'secret-1', payload: { orderId: 'o', qty: 1 } })
  await worker.reply(await worker.command((c) => c.requestId === 'secret-1'), { card: '4111-1111' })
  const onWire = await sealed.expect('result', (f) => f.requestId === 'secret-1')
  assert.equal(onWire.payload, null)
  assert.ok(onWire.sealed !== undefined && !JSON.stringify(onWire).includes('4111'))
  // The same session's socket without a key gets the result in clear: sealing is per socket.
  assert.deepEqual((await plain.expect('result', (f) => f.requestId === 'secret-1')).payload, { card: '4111-1111' })

  const gatewayKey = await subtle.importKey('raw', fromBase64Url(welcome.sealing?.epk ?? '') as Bytes, { name: 'ECDH', namedCurve: 'P-256' }, false, [])
  const shared = await subtle.deriveBits({ name: 'ECDH', public: gatewayKey }, pair.privateKey, 256)
  const hkdf = await subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey'])
  const utf8 = new TextEncoder()
  const key = await subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: utf8.encode(welcome.sessionId), info: utf8.encode(SEALING_INFO) },
    hkdf,
    { name: 'AES-GCM', length: 256 },
    false,
    ['decrypt'],
  )
  const open = (frame: ResultFrame, ct = frame.sealed?.ct ?? '') =>
    subtle.decrypt(
      { name: 'AES-GCM', iv: fromBase64Url(frame.sealed?.iv ?? '') as Bytes, additionalData: sealingAad(frame) as Bytes },
      key,
      fromBase64Url(ct) as Bytes,
    )
  assert.deepEqual(unpackValue(new Uint8Array(await open(onWire))), { card: '4111-1111' })
  // Tampered ciphertext, or the sealed payload moved to another frame (other offset), does not open.
  const ct = fromBase64Url(onWire.sealed?.ct ?? '')
  ct[0] = (ct[0] as number) ^ 1
  await assert.rejects(open(onWire, toBase64Url(ct)))
  await assert.rejects(open({ ...onWire, offset: String(BigInt(onWire.offset) + 1n) }))

  // The SDK does all of it.
  const client = await connect({ url: `ws://127.0.0.1:${gateway.port}/ws`, token: aliceToken, encryptResults: true, encoding: 'msgpack' })
  t.after(() => client.close())
  const sending = client.send('orders/sales/place', { orderId: 'o-2', qty: 1 }, { requestId: 'secret-2' })
  await worker.reply(await worker.command((c) => c.requestId === 'secret-2'), { card: '5500-0000' })
  assert.deepEqual((await sending).payload, { card: '5500-0000' })
  const failing = client.send('orders/sales/place', { orderId: 'o-3', qty: 1 }, { requestId: 'secret-3' })
  await worker.reply(await worker.command((c) => c.requestId === 'secret-3'), { code: 'WEIR_ERR_NON_RETRIABLE', message: 'declined' }, 'error')
  await assert.rejects(failing, (e) => isWeirError(e, 'WEIR_ERR_NON_RETRIABLE') && e.message === 'declined')

  const invalidKey = await rejectedUpgrade(gateway.port, { authorization: `Bearer ${aliceToken}` }, `?key=${'A'.repeat(87)}`)
  assert.equal(invalidKey.status, 400)
  assert.equal(invalidKey.body.code, 'WEIR_ERR_HANDSHAKE_INVALID')
})
