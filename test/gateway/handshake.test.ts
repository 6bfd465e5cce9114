// Every way the gateway refuses a WebSocket upgrade with 400, each with its code and what was wrong
// (docs/protocol.md, "Connecting"), against a real gateway on the real broker.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { after, before, test } from 'node:test'

import { toBase64Url } from '../../gateway/protocol.ts'
import type { Gateway } from '../../gateway/server.ts'
import { closeAdmin } from '../helpers/kafka.ts'
import { cleanups, createGatewayTopics, openSocket, startGateway, testCatalog, token } from './helpers.ts'

let gateway: Gateway
const shared = cleanups()

before(async () => {
  gateway = await startGateway(shared, { catalog: testCatalog(await createGatewayTopics(shared, 1)) })
})

after(async () => {
  await shared.run()
  await closeAdmin()
})

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: { code?: string; message?: string; details?: { violations?: string[] } }
}

/** An upgrade request with these headers (a valid one when `headers` is empty) and query. */
function upgrade(headers: Record<string, string | undefined>, query = ''): Promise<Answer> {
  const all: Record<string, string | undefined> = {
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    ...headers,
  }
  const sent = Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined))
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gateway.port, path: `/ws${query}`, headers: sent })
    req.on('upgrade', (_res, socket) => {
      socket.destroy()
      reject(new Error(`the upgrade was accepted: ${JSON.stringify(headers)}`))
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body.length > 0 ? (JSON.parse(body) as Answer['body']) : {} }))
    })
    req.on('error', reject)
    req.end()
  })
}

const P256_BASE64URL = /^[A-Za-z0-9_-]{87}$/

test('upgrade parameters are checked before the token, every problem listed at once', async () => {
  const bearer = { authorization: `Bearer ${await token()}` }
  const cases: Array<[string, Record<string, string | undefined>, string, RegExp]> = [
    ['session nonce', bearer, '?session=short', /^session must be/],
    ['encoding', bearer, '?encoding=xml', /^encoding must be json or msgpack/],
    ['sealing key syntax', bearer, '?key=not-a-key', /^key must be a base64url uncompressed P-256 public key/],
    ['subprotocols', { ...bearer, 'sec-websocket-protocol': 'chat' }, '', /^offered subprotocols must include weir\.v1/],
    ['WebSocket version', { ...bearer, 'sec-websocket-version': '8' }, '', /^Sec-WebSocket-Version must be 13/],
    ['no Upgrade header', { ...bearer, connection: undefined, upgrade: undefined }, '', /^Upgrade must be websocket/],
    // Syntax comes first: a bad parameter is reported even when the token is bad too.
    ['session nonce, no token', {}, '?session=short', /^session must be/],
  ]
  for (const [name, headers, query, violation] of cases) {
    const answer = await upgrade(headers, query)
    assert.equal(answer.status, 400, name)
    assert.equal(answer.body.code, 'WEIR_ERR_HANDSHAKE_INVALID', name)
    assert.equal(answer.body.details?.violations?.length, 1, name)
    assert.match(answer.body.details?.violations?.[0] ?? '', violation, name)
    assert.equal(answer.body.message, answer.body.details?.violations?.[0], name)
  }
  assert.equal((await upgrade({ ...bearer, 'sec-websocket-version': '8' })).headers['sec-websocket-version'], '13')

  const several = await upgrade(bearer, '?session=short&encoding=xml&key=x')
  assert.equal(several.status, 400)
  assert.equal(several.body.details?.violations?.length, 3)
})

test('a sealing key that is not an uncompressed point on P-256 is refused with 400 after the token check', async () => {
  const bearer = { authorization: `Bearer ${await token()}` }
  const compressedPrefix = toBase64Url(new Uint8Array([0x02, ...new Uint8Array(64).fill(7)]))
  const offCurve = toBase64Url(new Uint8Array([0x04, ...new Uint8Array(64).fill(7)]))
  assert.match(compressedPrefix, P256_BASE64URL)
  assert.match(offCurve, P256_BASE64URL)
  for (const [key, violation] of [
    [compressedPrefix, /^key must be an uncompressed P-256 public key/],
    [offCurve, /^key is not a point on P-256/],
  ] as const) {
    const answer = await upgrade(bearer, `?key=${key}`)
    assert.equal(answer.status, 400, key)
    assert.equal(answer.body.code, 'WEIR_ERR_HANDSHAKE_INVALID')
    assert.match(answer.body.details?.violations?.[0] ?? '', violation)
    // The point is checked once the token is: without a valid token the answer is 401.
    const unauthenticated = await upgrade({}, `?key=${key}`)
    assert.equal(unauthenticated.status, 401)
    assert.equal(unauthenticated.body.code, 'WEIR_ERR_UNAUTHENTICATED')
  }
})

test('a request on the socket path that is not a WebSocket upgrade gets 400 with a code', async () => {
  const bearer = { authorization: `Bearer ${await token()}` }
  for (const [name, headers] of [
    ['no Sec-WebSocket-Key', { ...bearer, 'sec-websocket-key': undefined }],
    ['a Sec-WebSocket-Key of the wrong length', { ...bearer, 'sec-websocket-key': 'c2hvcnQ=' }],
  ] as const) {
    const answer = await upgrade(headers)
    assert.equal(answer.status, 400, name)
    assert.equal(answer.body.code, 'WEIR_ERR_HANDSHAKE_INVALID', name)
    assert.match(answer.body.details?.violations?.[0] ?? '', /^not a WebSocket upgrade/, name)
  }
})

test('a valid upgrade with every parameter connects', async (t) => {
  const socket = await openSocket(t, gateway.port, { session: 'a-valid-session-nonce', encoding: 'msgpack' })
  assert.equal((await socket.expect('welcome')).sessionNonce, 'a-valid-session-nonce')
})
