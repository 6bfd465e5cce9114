// Accepting a JWT without waiting, so that the gateway can upgrade a socket inside uWS's upgrade handler (an
// upgrade completed after an await meets a uWS defect: docs/gateway.md, "Known uWS defect"). jose verifies
// through WebCrypto, which is asynchronous; node:crypto checks the same signatures synchronously.
//
// This path only ever accepts. Whatever is not the ordinary case (an unusual header, a key it cannot match
// exactly, non-canonical base64url, any failed check) answers undefined and is left to jose's jwtVerify, whose
// verdict and error then apply. So it must never accept a token jose would refuse: every rule here is jose's
// rule or a stricter one (test/gateway/auth.test.ts compares both on a corpus of tokens).
import { KeyObject, constants, createHmac, createPublicKey, timingSafeEqual, verify } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'

import type { JWTPayload } from 'jose'

export type FastKey = { readonly secret: Uint8Array } | { readonly publicKey: KeyObject }

export interface ClaimRules {
  readonly issuers: readonly string[] | undefined
  readonly audiences: readonly string[] | undefined
  readonly toleranceSec: number
  readonly requireExpiry: boolean
}

const SEGMENT = /^[A-Za-z0-9_-]+$/
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** The bytes of a canonical base64url segment (the one encoding of its bytes), or undefined. */
function canonical(segment: string): Buffer | undefined {
  if (!SEGMENT.test(segment)) return undefined
  const bytes = Buffer.from(segment, 'base64url')
  return bytes.toString('base64url') === segment ? bytes : undefined
}

function jsonObject(segment: string): Record<string, unknown> | undefined {
  const bytes = canonical(segment)
  if (bytes === undefined) return undefined
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(bytes))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

const HASHES: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' }
const CURVES: Record<string, { curve: string; bytes: number }> = {
  ES256: { curve: 'prime256v1', bytes: 64 },
  ES384: { curve: 'secp384r1', bytes: 96 },
  ES512: { curve: 'secp521r1', bytes: 132 },
}

/** Whether `signature` signs `data` under `alg` and `key`; undefined where jose's own checks could differ. */
function signatureValid(alg: string, key: FastKey, signingInput: string, signaturePart: string): boolean | undefined {
  if ('secret' in key) {
    if (alg !== 'HS256') return undefined
    const expected = Buffer.from(createHmac('sha256', key.secret).update(signingInput).digest('base64url'))
    const given = Buffer.from(signaturePart)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }
  const signature = canonical(signaturePart)
  if (signature === undefined) return undefined
  const publicKey = key.publicKey
  const data = Buffer.from(signingInput)
  const family = alg.slice(0, 2)
  try {
    if (family === 'RS' || family === 'PS') {
      const hash = HASHES[alg.slice(2)]
      // jose refuses RSA keys under 2048 bits; RSA-PSS-only keys are left to it.
      if (hash === undefined || publicKey.asymmetricKeyType !== 'rsa' || (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return undefined
      return family === 'RS'
        ? verify(hash, data, publicKey, signature)
        : verify(hash, data, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature)
    }
    const ec = CURVES[alg]
    if (ec !== undefined) {
      if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== ec.curve || signature.length !== ec.bytes) return undefined
      return verify(HASHES[alg.slice(2)] as string, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)
    }
    if ((alg === 'EdDSA' || alg === 'Ed25519') && publicKey.asymmetricKeyType === 'ed25519') return verify(null, data, publicKey, signature)
  } catch {
    return undefined
  }
  return undefined
}

/**
 * The claims of a compact JWS when jose's jwtVerify, given the same key and rules, would accept it; else
 * undefined. `keyFor` answers the key for a header (the one jose's key lookup would choose) or undefined.
 */
export function acceptCompact(token: string, keyFor: (header: Record<string, unknown>) => FastKey | undefined, rules: ClaimRules): JWTPayload | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string]
  const header = jsonObject(headerPart)
  if (header === undefined || typeof header.alg !== 'string' || 'crit' in header || 'b64' in header) return undefined
  const key = keyFor(header)
  if (key === undefined || signatureValid(header.alg, key, `${headerPart}.${payloadPart}`, signaturePart) !== true) return undefined
  const claims = jsonObject(payloadPart)
  if (claims === undefined) return undefined
  const now = Math.floor(Date.now() / 1000)
  const { exp, nbf, iat, sub, iss, aud } = claims
  if (exp === undefined ? rules.requireExpiry : typeof exp !== 'number' || exp <= now - rules.toleranceSec) return undefined
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + rules.toleranceSec)) return undefined
  if (iat !== undefined && typeof iat !== 'number') return undefined
  if (typeof sub !== 'string' || sub.length === 0) return undefined
  if (rules.issuers !== undefined && !(typeof iss === 'string' && rules.issuers.includes(iss))) return undefined
  if (rules.audiences !== undefined) {
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
    if (!rules.audiences.some((a) => audiences.includes(a))) return undefined
  }
  return claims as JWTPayload
}

const KTY: Record<string, { kty: string; crv?: string }> = {
  RS256: { kty: 'RSA' },
  RS384: { kty: 'RSA' },
  RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  PS384: { kty: 'RSA' },
  PS512: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  Ed25519: { kty: 'OKP', crv: 'Ed25519' },
}

/**
 * The public key a JSON Web Key Set holds for a header, stricter than jose's selection: the header names a
 * kid, exactly one member has it, that member names the same alg, has the alg's key type (and curve), is a
 * public key for signatures, and lists no key_ops. Imported keys are cached by the member's JSON.
 */
export function jwksKeyFinder(): (keys: readonly JsonWebKey[] | undefined, header: Record<string, unknown>) => KeyObject | undefined {
  const imported = new Map<string, KeyObject>()
  return (keys, header) => {
    const { alg, kid } = header
    if (keys === undefined || typeof alg !== 'string' || typeof kid !== 'string') return undefined
    const expected = KTY[alg]
    const candidates = keys.filter((k) => k.kid === kid)
    const jwk = candidates[0]
    if (expected === undefined || candidates.length !== 1 || jwk === undefined) return undefined
    if (jwk.alg !== alg || jwk.kty !== expected.kty || (expected.crv !== undefined && jwk.crv !== expected.crv)) return undefined
    if ((jwk.use !== undefined && jwk.use !== 'sig') || jwk.key_ops !== undefined || (jwk.ext !== undefined && typeof jwk.ext !== 'boolean') || 'd' in jwk) return undefined
    const id = JSON.stringify(jwk)
    let key = imported.get(id)
    if (key === undefined) {
      try {
        key = createPublicKey({ key: jwk, format: 'jwk' })
      } catch {
        return undefined
      }
      if (imported.size >= 64) imported.clear()
      imported.set(id, key)
    }
    return key
  }
}

/**
 * A configured public key (SPKI PEM or KeyObject) as a node:crypto KeyObject, or undefined. CryptoKeys are left
 * to jose, which also checks their usages and algorithm.
 */
export function toKeyObject(key: unknown): KeyObject | undefined {
  try {
    if (typeof key === 'string') return createPublicKey(key)
    return key instanceof KeyObject && key.type === 'public' ? key : undefined
  } catch {
    return undefined
  }
}
