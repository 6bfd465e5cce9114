// Gateway service configuration: command-line flags over environment variables over defaults, validated at
// start with every problem reported at once (WEIR_ERR_INVALID_OPTIONS). docs/gateway.md shows the table.
import { readFile } from 'node:fs/promises'
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

import { createCommandCatalog } from '../commands/catalog.ts'
import type { CommandCatalog, CommandCatalogDescription } from '../commands/catalog.ts'
import { WeirError, invalidOptions } from '../core/errors.ts'
import { LOG_LEVELS, readSettings } from '../core/settings.ts'
import type { AuthOptions } from './auth.ts'
import type { GatewayOptions } from './options.ts'
import { readKafkaConfig } from '../kafka/index.ts'

export const gatewaySettings = [
  { flag: 'catalog', env: 'WEIR_GATEWAY_CATALOG', default: '(required)', help: 'command catalog: a .json description, or a module exporting `catalog`' },
  { flag: 'brokers', env: 'KAFKA_BOOTSTRAP_SERVERS', default: '127.0.0.1:9092', help: 'Kafka bootstrap servers, comma separated (over the file\'s bootstrap.servers)' },
  { flag: 'kafka-config', env: 'WEIR_KAFKA_CONFIG', default: '(none)', help: 'Java client properties file: bootstrap.servers, security.protocol, sasl.*, ssl.*, compression.type (docs/production.md)' },
  { flag: 'host', env: 'WEIR_GATEWAY_HOST', default: '0.0.0.0', help: 'address to listen on' },
  { flag: 'port', env: 'WEIR_GATEWAY_PORT', default: '8080', help: 'WebSocket and HTTP port (0: any free port)' },
  { flag: 'path', env: 'WEIR_GATEWAY_PATH', default: '/ws', help: 'WebSocket route' },
  { flag: 'session-secret', env: 'WEIR_SESSION_SECRET', default: '(required)', help: 'secret (>= 32 bytes) shared by every instance; session ids derive from it' },
  { flag: 'jwt-hs256-secret', env: 'WEIR_JWT_HS256_SECRET', default: '(none)', help: 'accept HS256 tokens signed with this secret' },
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

export function parseGatewayConfig(argv: readonly string[], env: NodeJS.ProcessEnv): GatewayServiceConfig {
  const { violations, value, integer } = readSettings('gateway', gatewaySettings, argv, env)
  const catalogPath = value('catalog')
  if (catalogPath === undefined) violations.push('--catalog (WEIR_GATEWAY_CATALOG) is required')
  const sessionSecret = value('session-secret')
  if (sessionSecret === undefined) violations.push('--session-secret (WEIR_SESSION_SECRET) is required, the same on every instance')
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
  const hs256Secret = value('jwt-hs256-secret')
  if (hs256Secret === undefined && publicKeyFile === undefined && jwksUrl === undefined) {
    violations.push('no token verification configured: set --jwt-hs256-secret, --jwt-public-key-file or --jwks-url')
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
    ...(value('instance-id') === undefined ? {} : { instanceId: value('instance-id') as string }),
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
  const rows = gatewaySettings.map((s) => `  --${s.flag.padEnd(22)} ${s.env.padEnd(30)} ${s.help} (default ${s.default})`)
  return ['Usage: node gateway/main.ts [options]', '', 'Options (flag, environment variable):', ...rows, ''].join('\n')
}
