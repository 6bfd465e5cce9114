// Gateway service configuration: command-line flags over environment variables over defaults, validated at
// start with every problem reported at once (WEIR_ERR_INVALID_OPTIONS). docs/gateway.md shows the table.
// Secrets are read from the environment or a file only.
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

import { createCommandCatalog } from '../commands/catalog.ts'
import type { CommandCatalog, CommandCatalogDescription } from '../commands/catalog.ts'
import { WeirError, invalidOptions } from '../core/errors.ts'
import { LOG_LEVELS, readSettings } from '../core/settings.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { blobStoreFrom } from '../blobs/store-config.ts'
import type { AuthOptions } from './auth.ts'
import { DEFAULT_MAX_UPLOAD_BYTES } from './blob-links.ts'
import type { GatewayBlobOptions } from './blob-links.ts'
import type { GatewayOptions } from './options.ts'
import { readKafkaConfig } from '../kafka/index.ts'

export const gatewaySettings = [
  { flag: 'catalog', env: 'WEIR_GATEWAY_CATALOG', default: '(required)', help: 'command catalog: a .json description, or a module exporting `catalog`' },
  { flag: 'brokers', env: 'KAFKA_BOOTSTRAP_SERVERS', default: '127.0.0.1:9092', help: 'Kafka bootstrap servers, comma separated (over the file\'s bootstrap.servers)' },
  { flag: 'kafka-config', env: 'WEIR_KAFKA_CONFIG', default: '(none)', help: 'Java client properties file: bootstrap.servers, security.protocol, sasl.*, ssl.*, compression.type (docs/production.md)' },
  { flag: 'host', env: 'WEIR_GATEWAY_HOST', default: '0.0.0.0', help: 'address to listen on' },
  { flag: 'port', env: 'WEIR_GATEWAY_PORT', default: '8080', help: 'WebSocket and HTTP port (0: any free port)' },
  { flag: 'path', env: 'WEIR_GATEWAY_PATH', default: '/ws', help: 'WebSocket route' },
  // Secrets come from an environment variable or a file, never from a flag's value: every local user can read a
  // process's command line (ps, /proc/<pid>/cmdline). The value flags stay in the table only to be refused by name.
  { flag: 'session-secret', env: 'WEIR_SESSION_SECRET', default: '(required)', help: 'secret (>= 32 bytes) shared by every instance; session ids derive from it', secret: true },
  { flag: 'session-secret-file', env: 'WEIR_SESSION_SECRET_FILE', default: '(none)', help: 'file holding the session secret (instead of WEIR_SESSION_SECRET)' },
  { flag: 'jwt-hs256-secret', env: 'WEIR_JWT_HS256_SECRET', default: '(none)', help: 'accept HS256 tokens signed with this secret', secret: true },
  { flag: 'jwt-hs256-secret-file', env: 'WEIR_JWT_HS256_SECRET_FILE', default: '(none)', help: 'file holding the HS256 secret (instead of WEIR_JWT_HS256_SECRET)' },
  { flag: 'jwt-public-key-file', env: 'WEIR_JWT_PUBLIC_KEY_FILE', default: '(none)', help: 'accept tokens signed by this SPKI PEM public key' },
  { flag: 'jwt-algorithm', env: 'WEIR_JWT_ALGORITHM', default: 'RS256', help: 'algorithm of the public key (RS256, ES256, EdDSA, ...)' },
  { flag: 'jwks-url', env: 'WEIR_JWKS_URL', default: '(none)', help: "accept tokens signed by the identity provider's JWKS" },
  { flag: 'jwt-issuer', env: 'WEIR_JWT_ISSUER', default: '(any)', help: 'required iss claim' },
  { flag: 'jwt-audience', env: 'WEIR_JWT_AUDIENCE', default: '(any)', help: 'required aud claim' },
  { flag: 'deadlines', env: 'WEIR_GATEWAY_DEADLINES', default: 'deadlines-topic', help: 'register command deadlines: deadlines-topic or off' },
  { flag: 'max-frame-bytes', env: 'WEIR_GATEWAY_MAX_FRAME_BYTES', default: '65536', help: 'largest client frame accepted (larger: error frame)' },
  { flag: 'max-backpressure', env: 'WEIR_GATEWAY_MAX_BACKPRESSURE', default: '1048576', help: 'bytes buffered for a slow socket before it is disconnected' },
  { flag: 'rate-per-second', env: 'WEIR_GATEWAY_RATE_PER_SECOND', default: '200', help: 'frames per second per connection' },
  { flag: 'idle-timeout-sec', env: 'WEIR_GATEWAY_IDLE_TIMEOUT_SEC', default: '120', help: 'seconds without traffic before a socket is closed' },
  { flag: 'fetch-max-wait-ms', env: 'WEIR_GATEWAY_FETCH_MAX_WAIT_MS', default: '200', help: 'longest wait of a results/events fetch when nothing is new (lower: more requests when idle)' },
  { flag: 'command-linger-ms', env: 'WEIR_GATEWAY_COMMAND_LINGER_MS', default: '0', help: 'how long a command may wait for others to share its produce request' },
  { flag: 'command-timeout-ms', env: 'WEIR_GATEWAY_COMMAND_TIMEOUT_MS', default: '120000', help: 'how long a command may wait to be written while its partition has no leader (then a retriable error frame)' },
  // Large payloads (docs/payloads.md): POST /blobs and download links, on when a store is named.
  { flag: 'blobs-fs-root', env: 'WEIR_GATEWAY_BLOBS_FS_ROOT', default: '(none)', help: 'blob store in this folder (one machine); the workers\' claim check must use the same store' },
  { flag: 'blobs-s3-bucket', env: 'WEIR_GATEWAY_BLOBS_S3_BUCKET', default: '(none)', help: 'blob store in this S3 bucket (credentials: WEIR_S3_ACCESS_KEY_ID / WEIR_S3_SECRET_ACCESS_KEY or the AWS SDK chain)' },
  { flag: 'blobs-s3-endpoint', env: 'WEIR_GATEWAY_BLOBS_S3_ENDPOINT', default: '(AWS)', help: 'URL of an S3-compatible server (MinIO, Ceph, S3Proxy), path-style' },
  { flag: 'blobs-s3-region', env: 'WEIR_GATEWAY_BLOBS_S3_REGION', default: 'us-east-1', help: 'S3 region' },
  { flag: 'blobs-s3-prefix', env: 'WEIR_GATEWAY_BLOBS_S3_PREFIX', default: '(none)', help: 'prefix of the object keys in the bucket' },
  { flag: 'blobs-store-name', env: 'WEIR_GATEWAY_BLOBS_STORE_NAME', default: 'fs or s3', help: 'the store\'s name in references (the workers\' store must have the same)' },
  { flag: 'blobs-secret', env: 'WEIR_GATEWAY_BLOBS_SECRET', default: '(random)', help: 'secret (>= 32 bytes) signing upload references and download links; the same on every instance behind one address', secret: true },
  { flag: 'blobs-secret-file', env: 'WEIR_GATEWAY_BLOBS_SECRET_FILE', default: '(none)', help: 'file holding the blob secret (instead of WEIR_GATEWAY_BLOBS_SECRET)' },
  { flag: 'blobs-max-upload-bytes', env: 'WEIR_GATEWAY_BLOBS_MAX_UPLOAD_BYTES', default: '104857600', help: 'largest upload (larger: 413 WEIR_ERR_BLOB_TOO_LARGE)' },
  { flag: 'blobs-link-ttl-ms', env: 'WEIR_GATEWAY_BLOBS_LINK_TTL_MS', default: '60000', help: 'how long a download link works' },
  { flag: 'blobs-spool-dir', env: 'WEIR_GATEWAY_BLOBS_SPOOL_DIR', default: '(OS temp)', help: 'where an upload waits on disk while the store is behind' },
  { flag: 'instance-id', env: 'WEIR_GATEWAY_INSTANCE_ID', default: '(random)', help: 'name of this instance in metrics and logs' },
  { flag: 'log-level', env: 'WEIR_LOG_LEVEL', default: 'info', help: 'pino level: fatal, error, warn, info, debug, trace' },
] as const

export interface GatewayServiceConfig {
  readonly catalogPath: string
  /** An SPKI PEM file to read at start, and the algorithm it verifies. */
  readonly publicKey: { readonly file: string; readonly algorithm: string } | undefined
  readonly options: Omit<GatewayOptions, 'catalog'>
  readonly logLevel: string
}

type SecretSetting = Extract<(typeof gatewaySettings)[number], { secret: true }>

/**
 * Throws WEIR_ERR_SECRET_ON_COMMAND_LINE (with every configuration problem in `violations`) when argv gave a
 * secret setting a value; else WEIR_ERR_INVALID_OPTIONS when there are problems.
 */
export function parseGatewayConfig(argv: readonly string[], env: NodeJS.ProcessEnv): GatewayServiceConfig {
  const { violations, value, integer } = readSettings('gateway', gatewaySettings, argv, env)
  const onCommandLine = gatewaySettings.filter((s): s is SecretSetting => 'secret' in s && argv.some((a) => a === `--${s.flag}` || a.startsWith(`--${s.flag}=`)))
  for (const s of onCommandLine) {
    violations.push(`--${s.flag} is refused: a command line is readable by every local user; set ${s.env} or --${s.flag}-file (${s.env}_FILE)`)
  }
  /** A secret from its environment variable or its file (never from argv). */
  const secret = (flag: SecretSetting['flag']): string | undefined => {
    const variable = gatewaySettings.find((s) => s.flag === flag)?.env as string
    const fromEnv = env[variable] === '' ? undefined : env[variable]
    const file = value(`${flag}-file`)
    if (file === undefined) return fromEnv
    if (fromEnv !== undefined) {
      violations.push(`set one of ${variable} and --${flag}-file (${variable}_FILE), not both`)
      return fromEnv
    }
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      violations.push(`--${flag}-file: cannot read ${file}: ${(error as Error).message}`)
      return undefined
    }
    // Editors and `echo` end a file with a newline; the secret is the text before it.
    const content = text.replace(/\r?\n$/, '')
    if (content.length === 0) violations.push(`--${flag}-file: ${file} is empty`)
    return content.length === 0 ? undefined : content
  }
  /** The blob options when a store is named (its secret from the environment or a file, like the others). */
  function blobOptions(): GatewayBlobOptions | undefined {
    const named = value('blobs-fs-root') !== undefined || value('blobs-s3-bucket') !== undefined
    const blobSecret = secret('blobs-secret')
    const maxUploadBytes = integer('blobs-max-upload-bytes', DEFAULT_MAX_UPLOAD_BYTES, 1)
    const linkTtlMs = integer('blobs-link-ttl-ms', 60_000, 1000)
    const spoolDir = value('blobs-spool-dir')
    if (!named) {
      const stray = (['blobs-secret-file', 'blobs-max-upload-bytes', 'blobs-link-ttl-ms', 'blobs-spool-dir'] as const).filter((f) => value(f) !== undefined).map((f) => `--${f}`)
      if (env.WEIR_GATEWAY_BLOBS_SECRET) stray.push('WEIR_GATEWAY_BLOBS_SECRET')
      if (stray.length > 0) violations.push(`${stray.join(', ')} given without a blob store (--blobs-fs-root or --blobs-s3-bucket)`)
    }
    if (blobSecret !== undefined && Buffer.byteLength(blobSecret) < 32) {
      violations.push(`the blob secret (WEIR_GATEWAY_BLOBS_SECRET or --blobs-secret-file) must have at least 32 bytes, got ${Buffer.byteLength(blobSecret)}`)
    }
    const settings = { fsRoot: value('blobs-fs-root'), s3Bucket: value('blobs-s3-bucket'), s3Endpoint: value('blobs-s3-endpoint'), s3Region: value('blobs-s3-region'), s3Prefix: value('blobs-s3-prefix'), storeName: value('blobs-store-name') }
    let store: BlobStore | undefined
    try {
      store = blobStoreFrom(settings, env, violations, '--blobs-')
    } catch (error) {
      violations.push(error instanceof Error ? error.message : String(error))
    }
    if (store === undefined) return undefined
    // The secret is the text's UTF-8 bytes, as the session secret's (docs/gateway.md).
    return { store, maxUploadBytes, linkTtlMs, ...(blobSecret === undefined ? {} : { secret: Buffer.from(blobSecret) }), ...(spoolDir === undefined ? {} : { spoolDir }) }
  }
  const catalogPath = value('catalog')
  if (catalogPath === undefined) violations.push('--catalog (WEIR_GATEWAY_CATALOG) is required')
  const sessionSecret = secret('session-secret')
  if (sessionSecret === undefined && !violations.some((v) => v.startsWith('--session-secret'))) {
    violations.push('the session secret is required, the same on every instance: set WEIR_SESSION_SECRET or --session-secret-file')
  }
  const properties = readKafkaConfig(value('kafka-config'), violations)
  const brokers = (value('brokers')?.split(',') ?? properties?.brokers ?? ['127.0.0.1:9092']).map((b) => b.trim()).filter(Boolean)
  const deadlines = value('deadlines') ?? 'deadlines-topic'
  if (deadlines !== 'deadlines-topic' && deadlines !== 'off') violations.push('--deadlines must be deadlines-topic or off')
  const logLevel = value('log-level') ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) violations.push(`--log-level must be one of ${LOG_LEVELS.join(', ')}`)
  const publicKeyFile = value('jwt-public-key-file')
  const jwksUrl = value('jwks-url')
  const issuer = value('jwt-issuer')
  const audience = value('jwt-audience')
  const hs256Secret = secret('jwt-hs256-secret')
  if (hs256Secret === undefined && publicKeyFile === undefined && jwksUrl === undefined && onCommandLine.every((s) => s.flag !== 'jwt-hs256-secret')) {
    violations.push('no token verification configured: set WEIR_JWT_HS256_SECRET, --jwt-hs256-secret-file, --jwt-public-key-file or --jwks-url')
  }
  let jwks: URL | undefined
  if (jwksUrl !== undefined) {
    try {
      jwks = new URL(jwksUrl)
    } catch {
      violations.push(`--jwks-url is not a URL: ${jwksUrl}`)
    }
  }
  const auth: AuthOptions = {
    ...(hs256Secret === undefined ? {} : { hs256Secret }),
    ...(jwks === undefined ? {} : { jwks }),
    ...(issuer === undefined ? {} : { issuer }),
    ...(audience === undefined ? {} : { audience }),
  }
  const blobs = blobOptions()
  const rate = integer('rate-per-second', 200, 1)
  const options = {
    brokers,
    ...(properties === undefined ? {} : { connection: properties.connection }),
    auth,
    sessionSecret: sessionSecret ?? '',
    host: value('host') ?? '0.0.0.0',
    port: integer('port', 8080, 0),
    path: value('path') ?? '/ws',
    deadlines: deadlines as 'deadlines-topic' | 'off',
    maxFrameBytes: integer('max-frame-bytes', 64 * 1024, 256),
    maxBackpressure: integer('max-backpressure', 1024 * 1024, 1024),
    rateLimit: { ratePerSecond: rate, burst: rate * 2 },
    idleTimeoutSec: integer('idle-timeout-sec', 120, 0),
    fetchMaxWaitMs: integer('fetch-max-wait-ms', 200, 0),
    commandLingerMs: integer('command-linger-ms', 0, 0),
    commandTimeoutMs: integer('command-timeout-ms', 120_000, 1),
    ...(value('instance-id') === undefined ? {} : { instanceId: value('instance-id') as string }),
    ...(blobs === undefined ? {} : { blobs }),
  }
  // A store made for a configuration that is refused is closed again (the S3 store owns an SDK client).
  if (onCommandLine.length > 0 || violations.length > 0) void blobs?.store.close()
  if (onCommandLine.length > 0) {
    throw new WeirError('WEIR_ERR_SECRET_ON_COMMAND_LINE', `gateway: secrets on the command line: ${onCommandLine.map((s) => `--${s.flag}`).join(', ')}`, {
      details: { violations, flags: onCommandLine.map((s) => `--${s.flag}`) },
    })
  }
  if (violations.length > 0) throw invalidOptions('gateway', violations)
  const publicKey = publicKeyFile === undefined ? undefined : { file: publicKeyFile, algorithm: value('jwt-algorithm') ?? 'RS256' }
  return Object.freeze({ catalogPath: catalogPath as string, publicKey, options, logLevel })
}

/** The auth options with the configured public key file read (kept out of parsing so parsing stays synchronous). */
export async function resolveAuth(config: GatewayServiceConfig): Promise<AuthOptions> {
  const { publicKey } = config
  if (publicKey === undefined) return config.options.auth
  const key = await readFile(publicKey.file, 'utf8').catch((cause: unknown) => {
    throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `cannot read --jwt-public-key-file ${publicKey.file}`, { cause })
  })
  return { ...config.options.auth, publicKeys: [{ key, algorithm: publicKey.algorithm }] }
}

/** A catalog from a JSON description file, or from a module exporting `catalog` (a description or a catalog). */
export async function loadCatalog(path: string): Promise<CommandCatalog> {
  const absolute = isAbsolute(path) ? path : resolve(process.cwd(), path)
  let description: unknown
  try {
    if (absolute.endsWith('.json')) description = JSON.parse(await readFile(absolute, 'utf8'))
    else description = ((await import(pathToFileURL(absolute).href)) as { catalog?: unknown }).catalog
  } catch (cause) {
    throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `cannot load the command catalog ${path}: ${(cause as Error).message}`, { cause })
  }
  if (typeof description !== 'object' || description === null) throw invalidOptions('gateway', [`${path} must describe a command catalog ({topics, commands})`])
  if (typeof (description as CommandCatalog).find === 'function') return description as CommandCatalog
  return createCommandCatalog(description as CommandCatalogDescription)
}

export function gatewayUsage(): string {
  const rows = gatewaySettings.map((s) =>
    'secret' in s ? `  ${'(environment only)'.padEnd(24)} ${s.env.padEnd(30)} ${s.help} (default ${s.default})` : `  --${s.flag.padEnd(22)} ${s.env.padEnd(30)} ${s.help} (default ${s.default})`,
  )
  return ['Usage: node gateway/main.ts [options]', '', 'Options (flag, environment variable):', ...rows, ''].join('\n')
}
