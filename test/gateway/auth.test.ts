// Token verification (HS256, asymmetric keys, JWKS) and the binding of sessions to subjects.
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
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

test('acceptSync accepts only what verify accepts, with the same identity; ordinary HS256 tokens are accepted without waiting', async () => {
  const key = new TextEncoder().encode(SECRET)
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const hs256 = (header: unknown, payload: unknown) => {
    const signing = `${b64(header)}.${b64(payload)}`
    return `${signing}.${createHmac('sha256', key).update(signing).digest('base64url')}`
  }
  const sign = (builder: SignJWT, header: Record<string, unknown> = {}) => builder.setProtectedHeader({ alg: 'HS256', ...header }).sign(key)
  const valid = await sign(claims())
  const sub = { sub: 'alice', exp: now() + 60 }
  const corpus: Record<string, string> = {
    valid,
    'typ JWT': await sign(claims(), { typ: 'JWT' }),
    'exp within the clock tolerance': await sign(claims().setExpirationTime(now() - 3)),
    'exp beyond the clock tolerance': await sign(claims().setExpirationTime(now() - 6)),
    'nbf within the clock tolerance': await sign(claims().setNotBefore(now() + 3)),
    'nbf in the future': await sign(claims().setNotBefore(now() + 60)),
    'iat present': await sign(claims().setIssuedAt()),
    'no exp': await sign(new SignJWT({}).setSubject('alice')),
    'no sub': await sign(new SignJWT({}).setExpirationTime(now() + 60)),
    'empty sub': hs256({ alg: 'HS256' }, { ...sub, sub: '' }),
    'exp as a string': hs256({ alg: 'HS256' }, { ...sub, exp: String(now() + 60) }),
    'nbf as a string': hs256({ alg: 'HS256' }, { ...sub, nbf: '0' }),
    'iat as a string': hs256({ alg: 'HS256' }, { ...sub, iat: 'now' }),
    'payload an array': hs256({ alg: 'HS256' }, [sub]),
    'payload not JSON': `${b64({ alg: 'HS256' })}.${Buffer.from('{"sub":').toString('base64url')}.x`,
    'crit header': hs256({ alg: 'HS256', crit: ['exp'] }, sub),
    'b64 false': hs256({ alg: 'HS256', b64: false, crit: ['b64'] }, sub),
    'alg none': new UnsecuredJWT(sub).encode(),
    'alg HS384': await new SignJWT(sub).setProtectedHeader({ alg: 'HS384' }).sign(key),
    'wrong secret': await claims().setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(`${SECRET}x`)),
    'signature cut': valid.slice(0, -1),
    'signature extended': `${valid}A`,
    'four segments': `${valid}.x`,
    'padded segment': valid.replace('.', '=.'),
    empty: '',
  }
  // Every character of a valid token changed: nothing but the original may pass.
  for (let i = 0; i < valid.length; i++) {
    if (valid[i] === '.') continue
    corpus[`character ${i} changed`] = `${valid.slice(0, i)}${valid[i] === 'A' ? 'B' : 'A'}${valid.slice(i + 1)}`
  }
  const verifiers = {
    plain: createTokenVerifier({ hs256Secret: SECRET }),
    'issuer and audience': createTokenVerifier({ hs256Secret: SECRET, issuer: ['https://idp.example/'], audience: 'weir' }),
    'expiry optional': createTokenVerifier({ hs256Secret: SECRET, requireExpiry: false }),
  }
  corpus['issuer and audience'] = await sign(claims().setIssuer('https://idp.example/').setAudience(['other', 'weir']))
  corpus['wrong audience'] = await sign(claims().setIssuer('https://idp.example/').setAudience('other'))
  corpus['wrong issuer'] = await sign(claims().setIssuer('https://evil.example/').setAudience('weir'))
  let accepted = 0
  for (const [verifierName, verifier] of Object.entries(verifiers)) {
    for (const [name, token] of Object.entries(corpus)) {
      const fast = verifier.acceptSync(token)
      const slow = await verifier.verify(token).then((identity) => identity, () => undefined)
      if (slow !== undefined) accepted++
      // Never more than verify; and none of these tokens is unusual enough to be left to verify alone.
      assert.equal(fast !== undefined, slow !== undefined, `${verifierName}: "${name}": acceptSync ${fast === undefined ? 'refuses' : 'accepts'}, verify does not`)
      if (fast !== undefined) assert.deepEqual(fast, slow, `${verifierName}: "${name}" gives another identity`)
    }
  }
  const expectations: [keyof typeof verifiers, string, boolean][] = [
    ['plain', 'valid', true],
    ['plain', 'typ JWT', true],
    ['plain', 'exp within the clock tolerance', true],
    ['plain', 'nbf within the clock tolerance', true],
    ['plain', 'iat present', true],
    ['plain', 'no exp', false],
    ['expiry optional', 'no exp', true],
    ['issuer and audience', 'issuer and audience', true],
    ['issuer and audience', 'valid', false],
    ['plain', 'crit header', false],
  ]
  for (const [verifierName, name, accepted] of expectations) {
    assert.equal(verifiers[verifierName].acceptSync(corpus[name] as string) !== undefined, accepted, `${verifierName}: "${name}"`)
  }
  assert.equal(accepted, 18)
  // Only HS256 is decided without waiting: a verifier without a secret leaves every token to verify.
  const es = await generateKeyPair('ES256')
  const asymmetric = createTokenVerifier({ publicKeys: [{ key: await exportSPKI(es.publicKey), algorithm: 'ES256' }] })
  const esToken = await claims().setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey)
  assert.equal(asymmetric.acceptSync(esToken), undefined)
  assert.equal((await asymmetric.verify(esToken)).subject, 'alice')
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
