// Who is on the other end of a socket: JWT verification (jose) and the binding of client sessions to
// authenticated subjects.
import { createHmac, randomBytes } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'

import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, importSPKI, jwtVerify } from 'jose'
import type { CryptoKey, JSONWebKeySet, JWTPayload, JWTVerifyGetKey, KeyObject } from 'jose'

import { invalidOptions } from '../core/errors.ts'
import type { WeirError } from '../core/errors.ts'
import { gatewayError } from './errors.ts'
import { acceptCompact, jwksKeyFinder, toKeyObject } from './token-fast-path.ts'
import type { ClaimRules, FastKey } from './token-fast-path.ts'

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
  /** How long a JWKS fetched from its URL is used before it is fetched again, ms (default 600,000: jose's). */
  jwksCacheMaxAgeMs?: number
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
   * The identity of a token `verify` would accept, decided without waiting (node:crypto): a token in the usual
   * compact form, signed with the HS256 secret, a configured public key (PEM or KeyObject), or a key of the
   * JWKS matched exactly by kid (a remote set only while jose's cached copy is fresh), whose claims pass.
   * Undefined in every other case (an unusual header or key, any failure): only `verify` gives the verdict and
   * the error then. The gateway upgrades a socket inside uWS's upgrade handler when this answers, which avoids
   * the uWS defect of asynchronous upgrades (docs/gateway.md).
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
  if (auth.jwksCacheMaxAgeMs !== undefined && !(Number.isInteger(auth.jwksCacheMaxAgeMs) && auth.jwksCacheMaxAgeMs >= 0)) {
    violations.push('auth.jwksCacheMaxAgeMs must be an integer >= 0')
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
  const jwks = auth.jwks === undefined ? undefined : auth.jwks instanceof URL ? createRemoteJWKSet(auth.jwks, auth.jwksCacheMaxAgeMs === undefined ? {} : { cacheMaxAge: auth.jwksCacheMaxAgeMs }) : createLocalJWKSet(auth.jwks)
  const keys = new Map<string, Promise<CryptoKey | KeyObject>>()
  const syncKeys = new Map<string, FastKey | undefined>()
  for (const { key, algorithm } of auth.publicKeys ?? []) {
    keys.set(algorithm, typeof key === 'string' ? importSPKI(key, algorithm) : Promise.resolve(key))
    const publicKey = toKeyObject(key)
    syncKeys.set(algorithm, publicKey === undefined ? undefined : { publicKey })
  }
  const jwksKey = jwksKeyFinder()
  const inlineKeys = auth.jwks === undefined || auth.jwks instanceof URL ? undefined : structuredClone(auth.jwks.keys)
  // The key jose's getKey (below) would choose, when it can be had without waiting.
  const syncKeyFor = (header: Record<string, unknown>): FastKey | undefined => {
    if (header.alg === 'HS256') return secret === undefined ? undefined : { secret }
    if (syncKeys.has(header.alg as string)) return syncKeys.get(header.alg as string)
    if (jwks === undefined || ('fresh' in jwks && !jwks.fresh)) return undefined
    // jose hands out a copy of its set on every call: an inline one is copied once, here, as jose did.
    const publicKey = jwksKey((inlineKeys ?? jwks.jwks()?.keys) as JsonWebKey[] | undefined, header)
    return publicKey === undefined ? undefined : { publicKey }
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
      if (typeof token !== 'string') return undefined
      const payload = acceptCompact(token, syncKeyFor, claimRules)
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

function verificationError(cause: unknown): WeirError {
  if (cause instanceof joseErrors.JWTExpired) return gatewayError('WEIR_ERR_TOKEN_EXPIRED', 'the token expired', { cause })
  const reason = cause instanceof Error ? cause.message : String(cause)
  return gatewayError('WEIR_ERR_UNAUTHENTICATED', `token rejected: ${reason}`, { cause })
}

function rolesOf(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/[\s,]+/).filter((r) => r.length > 0)
  // Empty names are no roles (and the envelope's actor refuses them).
  if (Array.isArray(value)) return value.filter((r): r is string => typeof r === 'string' && r.length > 0)
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
