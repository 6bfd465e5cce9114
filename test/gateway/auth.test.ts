// Token verification (HS256, asymmetric keys, JWKS) and the binding of sessions to subjects.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose'

import { isWeirError } from '../../core/errors.ts'
import { allowed, createTokenVerifier, sessionIdOf } from '../../gateway/auth.ts'

const SECRET = 'a-secret-of-at-least-32-bytes-0123456789'
const now = () => Math.floor(Date.now() / 1000)
const claims = (extra: Record<string, unknown> = {}) => new SignJWT({ roles: ['ops', 'admin'], ...extra }).setSubject('alice').setExpirationTime(now() + 60)

const rejectsWith = async (promise: Promise<unknown>, code: string) =>
  assert.rejects(promise, (e) => isWeirError(e) && (e.code as string) === code)

test('HS256 tokens: identity, roles, expiry; a wrong secret, an expired token or no subject are refused with codes', async () => {
  const verifier = createTokenVerifier({ hs256Secret: SECRET })
  const key = new TextEncoder().encode(SECRET)
  const identity = await verifier.verify(await claims().setProtectedHeader({ alg: 'HS256' }).sign(key))
  assert.equal(identity.subject, 'alice')
  assert.deepEqual(identity.roles, ['ops', 'admin'])
  assert.ok((identity.expiresAt ?? 0) > Date.now())
  await rejectsWith(verifier.verify(await claims().setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(`${SECRET}x`))), 'WEIR_ERR_UNAUTHENTICATED')
  const expired = await new SignJWT({}).setSubject('alice').setExpirationTime(now() - 60).setProtectedHeader({ alg: 'HS256' }).sign(key)
  await rejectsWith(verifier.verify(expired), 'WEIR_ERR_TOKEN_EXPIRED')
  const anonymous = await new SignJWT({}).setExpirationTime(now() + 60).setProtectedHeader({ alg: 'HS256' }).sign(key)
  await rejectsWith(verifier.verify(anonymous), 'WEIR_ERR_UNAUTHENTICATED')
  const forever = await new SignJWT({}).setSubject('alice').setProtectedHeader({ alg: 'HS256' }).sign(key)
  await rejectsWith(verifier.verify(forever), 'WEIR_ERR_UNAUTHENTICATED')
  await rejectsWith(verifier.verify(new UnsecuredJWT({ sub: 'alice', exp: now() + 60 }).encode()), 'WEIR_ERR_UNAUTHENTICATED')
  await rejectsWith(verifier.verify(''), 'WEIR_ERR_UNAUTHENTICATED')
})

test('asymmetric keys (PEM) and a JWKS; issuer and audience are enforced; a public key cannot be used as an HS256 secret', async () => {
  const es = await generateKeyPair('ES256')
  const rs = await generateKeyPair('RS256')
  const jwk = { ...(await exportJWK(rs.publicKey)), kid: 'k1', alg: 'RS256' }
  const verifier = createTokenVerifier({
    hs256Secret: SECRET,
    publicKeys: [{ key: await exportSPKI(es.publicKey), algorithm: 'ES256' }],
    jwks: { keys: [jwk] },
    issuer: 'https://idp.example/',
    audience: 'weir',
  })
  const withClaims = () => claims().setIssuer('https://idp.example/').setAudience('weir')
  assert.equal((await verifier.verify(await withClaims().setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey))).subject, 'alice')
  assert.equal((await verifier.verify(await withClaims().setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(rs.privateKey))).subject, 'alice')
  await rejectsWith(verifier.verify(await claims().setAudience('weir').setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey)), 'WEIR_ERR_UNAUTHENTICATED')
  // Algorithm confusion: an HS256 token whose "secret" is the public key PEM.
  const pem = new TextEncoder().encode(await exportSPKI(es.publicKey))
  await rejectsWith(verifier.verify(await withClaims().setProtectedHeader({ alg: 'HS256' }).sign(pem)), 'WEIR_ERR_UNAUTHENTICATED')
  const other = await generateKeyPair('ES256')
  await rejectsWith(verifier.verify(await withClaims().setProtectedHeader({ alg: 'ES256' }).sign(other.privateKey)), 'WEIR_ERR_UNAUTHENTICATED')
})

test('roles: absent or empty means any subject; otherwise one must match', () => {
  assert.ok(allowed({ roles: [] }, undefined))
  assert.ok(allowed({ roles: [] }, []))
  assert.ok(allowed({ roles: ['ops'] }, ['admin', 'ops']))
  assert.ok(!allowed({ roles: ['ops'] }, ['admin']))
})

test('session ids depend on secret, subject and nonce', () => {
  const secret = new TextEncoder().encode(SECRET)
  const id = sessionIdOf(secret, 'alice', 'nonce-0123456789abcdef')
  assert.match(id, /^s_[A-Za-z0-9_-]{32}$/)
  assert.equal(sessionIdOf(secret, 'alice', 'nonce-0123456789abcdef'), id)
  assert.notEqual(sessionIdOf(secret, 'bob', 'nonce-0123456789abcdef'), id)
  assert.notEqual(sessionIdOf(secret, 'alice', 'nonce-0123456789abcdeg'), id)
  assert.notEqual(sessionIdOf(new TextEncoder().encode(`${SECRET}!`), 'alice', 'nonce-0123456789abcdef'), id)
  // Subject and nonce cannot trade characters: ("alice-x", nonce) is not ("alice", "-x" + nonce).
  assert.notEqual(sessionIdOf(secret, 'alice-x', 'nonce-0123456789abcdef'), sessionIdOf(secret, 'alice', '-xnonce-0123456789abcdef'))
})
