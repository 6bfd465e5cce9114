// Tokens for gateway tests: HS256 JWTs signed with the test secret the gateways are started with.
import { SignJWT } from 'jose'

export const HS256_SECRET = 'test-secret-test-secret-test-secret-0123456789'
export const SESSION_SECRET = 'session-secret-session-secret-session-secret-0123'

export interface TokenOptions {
  sub?: string
  roles?: string[]
  /** Seconds from now; negative for an expired token. */
  expiresInSec?: number
  secret?: string
}

export async function token(options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = new SignJWT({ roles: options.roles ?? [] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(options.sub ?? 'alice')
    .setIssuedAt(now - 60)
    .setExpirationTime(now + (options.expiresInSec ?? 600))
  return jwt.sign(new TextEncoder().encode(options.secret ?? HS256_SECRET))
}
