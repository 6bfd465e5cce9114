// How weir's clients reach a cluster: TLS, SASL and producer compression, in one settings type that every
// client (worker, gateway, CLI commands, scripts) passes through KafkaClientOptions.connection.
// client-properties.ts builds it from a Java client properties file.
import type { ConnectionOptions as TlsOptions } from 'node:tls'

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'] as const
export type SaslMechanism = (typeof SASL_MECHANISMS)[number]

export const COMPRESSION_TYPES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const
export type CompressionType = (typeof COMPRESSION_TYPES)[number]

export interface KafkaTls {
  /** CA certificates (PEM) the broker's certificate must chain to; default: Node's bundled roots. */
  readonly ca?: string | Buffer
  /** Client certificate (PEM), for brokers that authenticate clients by certificate (mTLS). */
  readonly cert?: string | Buffer
  /** The client certificate's private key (PEM). */
  readonly key?: string | Buffer
  /** Passphrase of an encrypted key. */
  readonly keyPassword?: string
  /** Name the broker certificate must carry and the SNI to send (default: the host dialled). */
  readonly serverName?: string
  /**
   * Check that the broker's certificate names the host (default true; Java's
   * ssl.endpoint.identification.algorithm=https). The chain is always verified.
   */
  readonly checkServerName?: boolean
}

/** An OAUTHBEARER token and when it expires (ms since the epoch). */
export interface OAuthBearerToken {
  readonly value: string
  readonly expiresAtMs: number
}

export type KafkaSasl =
  | { readonly mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; readonly username: string; readonly password: string }
  | {
      readonly mechanism: 'OAUTHBEARER'
      /**
       * Called for a token when a connection authenticates and the cached one is past 80% of its lifetime
       * (the Java client's default refresh window), so every connection and re-authentication gets an unexpired token.
       */
      readonly token: () => OAuthBearerToken | Promise<OAuthBearerToken>
      readonly extensions?: Readonly<Record<string, string>>
    }

export interface KafkaConnection {
  /** TLS to the brokers: `true` for Node's default roots and checks, or the settings. */
  readonly tls?: KafkaTls | true
  readonly sasl?: KafkaSasl
  /** Compression of the batches producers write (default none). */
  readonly compression?: CompressionType
}

const TLS_KEYS = new Set(['ca', 'cert', 'key', 'keyPassword', 'serverName', 'checkServerName'])
const CONNECTION_KEYS = new Set(['tls', 'sasl', 'compression'])

function pem(value: unknown): boolean {
  return typeof value === 'string' || Buffer.isBuffer(value)
}

/** Adds every problem of `connection` to `violations` (secrets are never quoted). */
export function validateConnection(connection: unknown, violations: string[]): void {
  if (connection === undefined) return
  if (typeof connection !== 'object' || connection === null) {
    violations.push('connection must be an object ({ tls, sasl, compression })')
    return
  }
  const c = connection as Record<string, unknown>
  for (const key of Object.keys(c)) if (!CONNECTION_KEYS.has(key)) violations.push(`connection.${key} is not a connection setting (tls, sasl, compression)`)
  if (c.tls !== undefined && c.tls !== true) {
    if (typeof c.tls !== 'object' || c.tls === null) violations.push('connection.tls must be true or an object')
    else {
      const tls = c.tls as Record<string, unknown>
      for (const key of Object.keys(tls)) if (!TLS_KEYS.has(key)) violations.push(`connection.tls.${key} is not a TLS setting (${[...TLS_KEYS].join(', ')})`)
      for (const key of ['ca', 'cert', 'key'] as const) if (tls[key] !== undefined && !pem(tls[key])) violations.push(`connection.tls.${key} must be PEM text or a Buffer`)
      if ((tls.cert === undefined) !== (tls.key === undefined)) violations.push('connection.tls.cert and connection.tls.key go together (a client certificate needs its key)')
      if (tls.keyPassword !== undefined && typeof tls.keyPassword !== 'string') violations.push('connection.tls.keyPassword must be a string')
      if (tls.serverName !== undefined && (typeof tls.serverName !== 'string' || tls.serverName.length === 0)) violations.push('connection.tls.serverName must be a non-empty string')
      if (tls.checkServerName !== undefined && typeof tls.checkServerName !== 'boolean') violations.push('connection.tls.checkServerName must be a boolean')
    }
  }
  if (c.sasl !== undefined) {
    const sasl = c.sasl as Record<string, unknown> | null
    if (typeof sasl !== 'object' || sasl === null) violations.push('connection.sasl must be an object')
    else if (!SASL_MECHANISMS.includes(sasl.mechanism as SaslMechanism)) {
      violations.push(`connection.sasl.mechanism must be one of ${SASL_MECHANISMS.join(', ')}, got ${JSON.stringify(sasl.mechanism)}`)
    } else if (sasl.mechanism === 'OAUTHBEARER') {
      if (typeof sasl.token !== 'function') violations.push('connection.sasl.token must be a function returning { value, expiresAtMs } (OAUTHBEARER)')
      if (sasl.extensions !== undefined && (typeof sasl.extensions !== 'object' || sasl.extensions === null)) violations.push('connection.sasl.extensions must be an object of strings')
    } else {
      if (typeof sasl.username !== 'string' || sasl.username.length === 0) violations.push(`connection.sasl.username must be a non-empty string (${String(sasl.mechanism)})`)
      if (typeof sasl.password !== 'string' || sasl.password.length === 0) violations.push(`connection.sasl.password must be a non-empty string (${String(sasl.mechanism)})`)
    }
  }
  if (c.compression !== undefined && !COMPRESSION_TYPES.includes(c.compression as CompressionType)) {
    violations.push(`connection.compression must be one of ${COMPRESSION_TYPES.join(', ')}, got ${JSON.stringify(c.compression)}`)
  }
}

/** Share of a token's lifetime after which a new one is asked for (the Java client's sasl.login.refresh.window.factor). */
const REFRESH_FACTOR = 0.8

/**
 * Caches the provider's token and asks for a new one once 80% of its lifetime has passed; concurrent
 * connections share one pending call.
 */
export function refreshingTokenProvider(provider: () => OAuthBearerToken | Promise<OAuthBearerToken>, now: () => number = Date.now): () => Promise<string> {
  let cached: { value: string; refreshAt: number; expiresAt: number } | undefined
  let pending: Promise<string> | undefined
  return async () => {
    const time = now()
    if (cached !== undefined && time < cached.refreshAt) return cached.value
    pending ??= (async () => {
      try {
        const token = await provider()
        if (typeof token?.value !== 'string' || token.value.length === 0 || !Number.isFinite(token.expiresAtMs)) {
          throw new TypeError('the OAUTHBEARER token provider must return { value: string, expiresAtMs: number }')
        }
        const issued = now()
        cached = { value: token.value, expiresAt: token.expiresAtMs, refreshAt: issued + (token.expiresAtMs - issued) * REFRESH_FACTOR }
        return token.value
      } finally {
        pending = undefined
      }
    })()
    return pending
  }
}

/** The settings as @platformatic/kafka's connection options (tls, tlsServerName, sasl). */
export function platformaticConnection(connection: KafkaConnection | undefined): Record<string, unknown> {
  if (connection === undefined) return {}
  const result: Record<string, unknown> = {}
  if (connection.tls !== undefined) {
    const settings: KafkaTls = connection.tls === true ? {} : connection.tls
    const tls: TlsOptions = {}
    if (settings.ca !== undefined) tls.ca = settings.ca
    if (settings.cert !== undefined) tls.cert = settings.cert
    if (settings.key !== undefined) tls.key = settings.key
    if (settings.keyPassword !== undefined) tls.passphrase = settings.keyPassword
    if (settings.checkServerName === false) tls.checkServerIdentity = () => undefined
    if (settings.serverName !== undefined) {
      tls.servername = settings.serverName
      result.tlsServerName = settings.serverName
    }
    result.tls = tls
  }
  const sasl = connection.sasl
  if (sasl !== undefined) {
    result.sasl =
      sasl.mechanism === 'OAUTHBEARER'
        ? { mechanism: sasl.mechanism, token: refreshingTokenProvider(sasl.token), ...(sasl.extensions === undefined ? {} : { oauthBearerExtensions: { ...sasl.extensions } }) }
        : { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password }
  }
  return result
}

/** What a log line or error may say about a connection: no password, token, key or certificate. */
export function describeConnection(connection: KafkaConnection | undefined): Record<string, unknown> {
  if (connection === undefined) return { tls: false, sasl: 'none' }
  const tls = connection.tls === undefined ? false : connection.tls === true ? true : { ca: connection.tls.ca !== undefined, clientCertificate: connection.tls.cert !== undefined, serverName: connection.tls.serverName, checkServerName: connection.tls.checkServerName !== false }
  const sasl = connection.sasl === undefined ? 'none' : connection.sasl.mechanism === 'OAUTHBEARER' ? 'OAUTHBEARER' : `${connection.sasl.mechanism} as ${connection.sasl.username}`
  return { tls, sasl, compression: connection.compression ?? 'none' }
}
