// Who is on the other end of a socket: JWT verification (jose) and the binding of client sessions to
// authenticated subjects.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, importSPKI, jwtVerify } from 'jose'
import type { CryptoKey, JSONWebKeySet, JWTPayload, JWTVerifyGetKey, KeyObject } from 'jose'

import { invalidOptions } from '../core/errors.ts'
import type { WeirError } from '../core/errors.ts'
import { gatewayError } from './errors.ts'

export interface PublicKeyOption {
  /** A CryptoKey or KeyObject, or an SPKI PEM string. */
  key: CryptoKey | KeyObject | string
  /** The JWS algorithm the key verifies (RS256, PS256, ES256, EdDSA, ...). */
  algorithm: string
}

export interface AuthOptions {
  /** Shared secret for HS256 tokens. */
  hs256Secret?: string | Uint8Array
  /** Asymmetric public keys (tokens signed by an identity provider). */
  publicKeys?: readonly PublicKeyOption[]
  /** A JSON Web Key Set, given inline or as the URL the identity provider publishes it at. */
  jwks?: JSONWebKeySet | URL
  issuer?: string | readonly string[]
  audience?: string | readonly string[]
  /** Allowed clock skew, seconds (default 5). */
  clockToleranceSec?: number
  /** Claim holding the subject's roles (default `roles`; a string or an array of strings). */
  rolesClaim?: string
  /** Reject tokens without `exp` (default true): a token that never expires cannot be revoked by time. */
  requireExpiry?: boolean
}

export interface Identity {
  readonly subject: string
  readonly roles: readonly string[]
  /** ms since the epoch; undefined only when requireExpiry is false and the token has no exp. */
  readonly expiresAt: number | undefined
  readonly claims: Readonly<JWTPayload>
}

export interface TokenVerifier {
  /** Resolves the identity, or rejects with WEIR_ERR_UNAUTHENTICATED / WEIR_ERR_TOKEN_EXPIRED. */
  verify(token: string): Promise<Identity>
  /**
   * The identity of a token `verify` would accept, decided without waiting: an HS256 token in the usual compact
   * form whose signature and claims pass. Undefined in every other case (any other algorithm, an unusual header,
   * any failure): only `verify` gives the verdict and the error then. The gateway upgrades a socket inside uWS's
   * upgrade handler when this answers, which avoids the uWS defect of asynchronous upgrades (docs/gateway.md).
   */
  acceptSync(token: string): Identity | undefined
}

const ASYMMETRIC = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'])

export function validateAuthOptions(auth: AuthOptions | undefined, violations: string[]): void {
  if (auth === undefined || typeof auth !== 'object') {
    violations.push('auth is required: hs256Secret, publicKeys or jwks')
    return
  }
  const secretLength = typeof auth.hs256Secret === 'string' ? Buffer.byteLength(auth.hs256Secret) : auth.hs256Secret?.byteLength
  if (auth.hs256Secret !== undefined && (secretLength ?? 0) < 32) violations.push('auth.hs256Secret must be at least 32 bytes')
  if (auth.hs256Secret === undefined && (auth.publicKeys?.length ?? 0) === 0 && auth.jwks === undefined) {
    violations.push('auth needs at least one of hs256Secret, publicKeys, jwks')
  }
  for (const [i, entry] of (auth.publicKeys ?? []).entries()) {
    if (!ASYMMETRIC.has(entry?.algorithm)) violations.push(`auth.publicKeys[${i}].algorithm must be one of ${[...ASYMMETRIC].join(', ')}`)
    if (entry?.key === undefined) violations.push(`auth.publicKeys[${i}].key is required`)
  }
  if (auth.clockToleranceSec !== undefined && !(Number.isInteger(auth.clockToleranceSec) && auth.clockToleranceSec >= 0)) {
    violations.push('auth.clockToleranceSec must be an integer >= 0')
  }
}

export function createTokenVerifier(auth: AuthOptions): TokenVerifier {
  const violations: string[] = []
  validateAuthOptions(auth, violations)
  if (violations.length > 0) throw invalidOptions('TokenVerifier', violations)
  const secret = auth.hs256Secret === undefined ? undefined : typeof auth.hs256Secret === 'string' ? new TextEncoder().encode(auth.hs256Secret) : auth.hs256Secret
  const jwks = auth.jwks === undefined ? undefined : auth.jwks instanceof URL ? createRemoteJWKSet(auth.jwks) : createLocalJWKSet(auth.jwks)
  const keys = new Map<string, Promise<CryptoKey | KeyObject>>()
  for (const { key, algorithm } of auth.publicKeys ?? []) {
    keys.set(algorithm, typeof key === 'string' ? importSPKI(key, algorithm) : Promise.resolve(key))
  }
  const algorithms = [...(secret === undefined ? [] : ['HS256']), ...keys.keys(), ...(jwks === undefined ? [] : [...ASYMMETRIC])]
  const rolesClaim = auth.rolesClaim ?? 'roles'
  const requireExpiry = auth.requireExpiry !== false

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256' && secret !== undefined) return secret
    const key = keys.get(header.alg ?? '')
    if (key !== undefined) return key
    if (jwks !== undefined && header.alg !== 'HS256') return jwks(header, token)
    throw new joseErrors.JOSEAlgNotAllowed(`algorithm ${header.alg} is not accepted`)
  }

  const toIdentity = (payload: JWTPayload): Identity => {
    const subject = payload.sub
    if (typeof subject !== 'string' || subject.length === 0) throw gatewayError('WEIR_ERR_UNAUTHENTICATED', 'the token has no subject (sub)')
    return Object.freeze({
      subject,
      roles: Object.freeze(rolesOf(payload[rolesClaim])),
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
      claims: Object.freeze({ ...payload }),
    })
  }
  const claimRules: ClaimRules = {
    issuers: auth.issuer === undefined ? undefined : typeof auth.issuer === 'string' ? [auth.issuer] : auth.issuer,
    audiences: auth.audience === undefined ? undefined : typeof auth.audience === 'string' ? [auth.audience] : auth.audience,
    toleranceSec: auth.clockToleranceSec ?? 5,
    requireExpiry,
  }

  return {
    acceptSync(token) {
      if (secret === undefined || typeof token !== 'string') return undefined
      const payload = acceptHs256(token, secret, claimRules)
      return payload === undefined ? undefined : toIdentity(payload)
    },

    async verify(token) {
      if (typeof token !== 'string' || token.length === 0) throw gatewayError('WEIR_ERR_UNAUTHENTICATED', 'no token')
      try {
        decodeProtectedHeader(token)
      } catch (cause) {
        throw gatewayError('WEIR_ERR_UNAUTHENTICATED', 'the token is not a JWS', { cause })
      }
      let payload: JWTPayload
      try {
        ;({ payload } = await jwtVerify(token, getKey, {
          algorithms,
          ...(auth.issuer === undefined ? {} : { issuer: auth.issuer as string | string[] }),
          ...(auth.audience === undefined ? {} : { audience: auth.audience as string | string[] }),
          clockTolerance: auth.clockToleranceSec ?? 5,
          requiredClaims: requireExpiry ? ['sub', 'exp'] : ['sub'],
        }))
      } catch (cause) {
        throw verificationError(cause)
      }
      return toIdentity(payload)
    },
  }
}

interface ClaimRules {
  issuers: readonly string[] | undefined
  audiences: readonly string[] | undefined
  toleranceSec: number
  requireExpiry: boolean
}

const SEGMENT = /^[A-Za-z0-9_-]+$/
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** A JSON object from a canonical base64url segment, or undefined. */
function jsonSegment(segment: string): Record<string, unknown> | undefined {
  if (!SEGMENT.test(segment)) return undefined
  const bytes = Buffer.from(segment, 'base64url')
  if (bytes.toString('base64url') !== segment) return undefined
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(bytes))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/**
 * The claims of an HS256 compact JWS when jose's jwtVerify (with the options `verify` passes) would accept it,
 * else undefined. Never accepts more than jose: whatever is unusual (crit, b64, non-canonical base64url, a
 * claim of the wrong type) is left to jose, whose verdict and error message then apply.
 */
function acceptHs256(token: string, secret: Uint8Array, rules: ClaimRules): JWTPayload | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string]
  const header = jsonSegment(headerPart)
  if (header === undefined || header.alg !== 'HS256' || 'crit' in header || 'b64' in header) return undefined
  const expected = Buffer.from(createHmac('sha256', secret).update(`${headerPart}.${payloadPart}`).digest('base64url'))
  const given = Buffer.from(signaturePart)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
  const claims = jsonSegment(payloadPart)
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

function verificationError(cause: unknown): WeirError {
  if (cause instanceof joseErrors.JWTExpired) return gatewayError('WEIR_ERR_TOKEN_EXPIRED', 'the token expired', { cause })
  const reason = cause instanceof Error ? cause.message : String(cause)
  return gatewayError('WEIR_ERR_UNAUTHENTICATED', `token rejected: ${reason}`, { cause })
}

function rolesOf(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/[\s,]+/).filter((r) => r.length > 0)
  if (Array.isArray(value)) return value.filter((r): r is string => typeof r === 'string')
  return []
}

/** May an identity send a command whose spec lists `roles`? (empty or absent: any authenticated subject) */
export function allowed(identity: Pick<Identity, 'roles'>, roles: readonly string[] | undefined): boolean {
  return roles === undefined || roles.length === 0 || roles.some((role) => identity.roles.includes(role))
}

export const SESSION_NONCE = /^[A-Za-z0-9_-]{16,128}$/

export function newSessionNonce(): string {
  return randomBytes(18).toString('base64url')
}

/**
 * The client session id of (subject, nonce): an HMAC under a secret every gateway instance shares, so any
 * instance derives the same id after a reconnect, and nobody can claim a session id: the same nonce under
 * another subject gives another session, and a session id alone gives nothing.
 */
export function sessionIdOf(secret: Uint8Array, subject: string, nonce: string): string {
  // The subject is length-prefixed, so no (subject, nonce) pair can be read as another.
  const mac = createHmac('sha256', secret)
    .update(`weir-session\u0000${Buffer.byteLength(subject)}:`)
    .update(subject)
    .update(nonce)
    .digest('base64url')
  return `s_${mac.slice(0, 32)}`
}
