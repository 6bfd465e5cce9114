// Token verification (HS256, asymmetric keys, JWKS) and the binding of sessions to subjects.
import assert from 'node:assert/strict'
import { createHmac, createPublicKey } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'

import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose'
import type { CryptoKey } from 'jose'

import { isWeirError } from '../../core/errors.ts'
import { allowed, createTokenVerifier, sessionIdOf } from '../../gateway/auth.ts'
import { waitFor } from '../helpers/wait.ts'

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
    // The verifiers below allow 60 s of clock skew; the boundary tokens sit 30 s inside or outside it, so a loaded
    // machine that takes seconds over the corpus never moves a token across it between the two checks.
    'exp within the clock tolerance': await sign(claims().setExpirationTime(now() - 30)),
    'exp beyond the clock tolerance': await sign(claims().setExpirationTime(now() - 90)),
    'nbf within the clock tolerance': await sign(claims().setNotBefore(now() + 30)),
    'nbf in the future': await sign(claims().setNotBefore(now() + 120)),
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
    plain: createTokenVerifier({ hs256Secret: SECRET, clockToleranceSec: 60 }),
    'issuer and audience': createTokenVerifier({ hs256Secret: SECRET, issuer: ['https://idp.example/'], audience: 'weir', clockToleranceSec: 60 }),
    'expiry optional': createTokenVerifier({ hs256Secret: SECRET, requireExpiry: false, clockToleranceSec: 60 }),
  }
  corpus['issuer and audience'] = await sign(claims().setIssuer('https://idp.example/').setAudience(['other', 'weir']))
  corpus['wrong audience'] = await sign(claims().setIssuer('https://idp.example/').setAudience('other'))
  corpus['wrong issuer'] = await sign(claims().setIssuer('https://evil.example/').setAudience('weir'))
  for (const [verifierName, verifier] of Object.entries(verifiers)) {
    for (const [name, token] of Object.entries(corpus)) {
      const fast = verifier.acceptSync(token)
      const slow = await verifier.verify(token).then((identity) => identity, () => undefined)
      // Never more than verify. And none of the named tokens is unusual enough to be left to verify alone; a
      // changed last character can be a non-canonical encoding of the same signature, which jose accepts and
      // acceptSync leaves to it.
      if (fast !== undefined) assert.ok(slow !== undefined, `${verifierName}: acceptSync accepts "${name}", verify does not`)
      else if (!name.startsWith('character')) assert.equal(slow, undefined, `${verifierName}: acceptSync refuses "${name}", verify does not`)
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
})

test('acceptSync with public keys and JSON Web Key Sets: never more than verify; ordinary tokens without waiting', async (t) => {
  const pair = (alg: string, options?: { crv?: string; modulusLength?: number }) => generateKeyPair(alg, { extractable: true, ...options })
  const [es, ps, ed, es384, rs, rsNoAlg, other] = await Promise.all([
    pair('ES256'),
    pair('PS256'),
    pair('EdDSA', { crv: 'Ed25519' }),
    pair('ES384'),
    pair('RS256'),
    pair('RS256'),
    pair('ES256'),
  ])
  const jwk = async (key: CryptoKey, extra: Record<string, unknown>) => ({ ...(await exportJWK(key)), ...extra })
  const keySet = {
    keys: [
      await jwk(rs.publicKey, { kid: 'k1', alg: 'RS256', use: 'sig' }),
      await jwk(rsNoAlg.publicKey, { kid: 'k2' }),
      await jwk(rsNoAlg.publicKey, { kid: 'dup', alg: 'RS256' }),
      await jwk(rs.publicKey, { kid: 'dup', alg: 'RS256' }),
    ],
  }
  // A remote set: jose fetches it on first use; until then (and whenever jose's copy is stale) only verify decides.
  let published = [keySet.keys[0]]
  const server = createServer((_, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: published })))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  const remote = createTokenVerifier({ jwks: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`), jwksCacheMaxAgeMs: 300 })
  const verifier = createTokenVerifier({
    publicKeys: [
      { key: await exportSPKI(es.publicKey), algorithm: 'ES256' },
      { key: createPublicKey(await exportSPKI(ps.publicKey)), algorithm: 'PS256' },
      { key: await exportSPKI(ed.publicKey), algorithm: 'EdDSA' },
      { key: es384.publicKey, algorithm: 'ES384' },
    ],
    jwks: keySet,
  })
  const sign = (alg: string, key: CryptoKey, header: Record<string, unknown> = {}, builder = claims()) => builder.setProtectedHeader({ alg, ...header }).sign(key)
  const corpus: Record<string, string> = {
    'ES256 PEM': await sign('ES256', es.privateKey),
    'PS256 KeyObject': await sign('PS256', ps.privateKey),
    'EdDSA PEM': await sign('EdDSA', ed.privateKey),
    'ES384 CryptoKey': await sign('ES384', es384.privateKey),
    'RS256 JWKS kid k1': await sign('RS256', rs.privateKey, { kid: 'k1' }),
    'RS256 JWKS member without alg': await sign('RS256', rsNoAlg.privateKey, { kid: 'k2' }),
    'RS256 JWKS duplicate kid': await sign('RS256', rs.privateKey, { kid: 'dup' }),
    'RS256 JWKS no kid': await sign('RS256', rs.privateKey),
    'RS256 JWKS unknown kid': await sign('RS256', rs.privateKey, { kid: 'k9' }),
    'RS256 signed by another key': await sign('RS256', rsNoAlg.privateKey, { kid: 'k1' }),
    'ES256 signed by another key': await sign('ES256', other.privateKey),
    'ES256 expired': await sign('ES256', es.privateKey, {}, new SignJWT({}).setSubject('alice').setExpirationTime(now() - 60)),
    'PS256 as RS256': (await sign('PS256', ps.privateKey)).replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'k1' })).toString('base64url')),
  }
  for (const name of ['ES256 PEM', 'PS256 KeyObject', 'RS256 JWKS kid k1']) {
    const valid = corpus[name] as string
    for (let i = 0; i < valid.length; i += 3) {
      if (valid[i] !== '.') corpus[`${name}, character ${i} changed`] = `${valid.slice(0, i)}${valid[i] === 'A' ? 'B' : 'A'}${valid.slice(i + 1)}`
    }
  }
  const acceptedSync = new Set<string>()
  for (const [name, token] of Object.entries(corpus)) {
    const fast = verifier.acceptSync(token)
    const slow = await verifier.verify(token).then((identity) => identity, () => undefined)
    if (fast === undefined) continue
    acceptedSync.add(name)
    assert.ok(slow !== undefined, `acceptSync accepts "${name}", verify does not`)
    assert.deepEqual(fast, slow, `"${name}" gives another identity`)
  }
  // Without waiting: PEM and KeyObject keys, a JWKS member matched exactly. Left to verify (which accepts
  // them): a CryptoKey, a JWKS member without alg. (A kid two members share is left to it too; it refuses.)
  assert.deepEqual([...acceptedSync].sort(), ['ES256 PEM', 'EdDSA PEM', 'PS256 KeyObject', 'RS256 JWKS kid k1'])
  for (const name of ['ES384 CryptoKey', 'RS256 JWKS member without alg']) assert.equal((await verifier.verify(corpus[name] as string)).subject, 'alice', name)

  const remoteToken = corpus['RS256 JWKS kid k1'] as string
  assert.equal(remote.acceptSync(remoteToken), undefined, 'before jose fetched the remote set')
  assert.equal((await remote.verify(remoteToken)).subject, 'alice')
  assert.equal(remote.acceptSync(remoteToken)?.subject, 'alice', 'with a fresh copy of the remote set')
  assert.equal(remote.acceptSync(corpus['RS256 signed by another key'] as string), undefined)
  // The identity provider rotates k1 out. Once jose's copy is stale, acceptSync no longer uses it; verify
  // fetches the set again and refuses the token.
  published = []
  await waitFor(() => remote.acceptSync(remoteToken) === undefined, { what: "jose's copy of the remote set going stale", timeoutMs: 5000 })
  await assert.rejects(remote.verify(remoteToken), (e) => isWeirError(e) && e.code === 'WEIR_ERR_UNAUTHENTICATED')
  assert.equal(remote.acceptSync(remoteToken), undefined, 'after the key left the set')
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
