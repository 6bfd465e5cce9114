// The client properties file a Kafka provider hands out (Confluent Cloud, MSK, Aiven, Redpanda), read with the
// Java client's key names into weir's connection settings. Keys weir does not understand are refused all at
// once rather than ignored, so a setting that matters is never silently dropped. Secrets are never quoted.
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'

import { invalidOptions, isWeirError } from '../core/errors.ts'
import { COMPRESSION_TYPES } from './connection.ts'
import type { CompressionType, KafkaConnection, KafkaTls } from './connection.ts'

export interface ClientProperties {
  /** bootstrap.servers, when the file has it. */
  readonly brokers?: string[]
  readonly clientId?: string
  readonly connection: KafkaConnection
  /** session.timeout.ms, when the file has it (the worker's group session timeout unless set otherwise). */
  readonly sessionTimeoutMs?: number
  /** request.timeout.ms, when the file has it. */
  readonly requestTimeoutMs?: number
}

/** The keys that are read, and the ones accepted because weir already behaves as they ask. */
export const SUPPORTED_PROPERTIES = [
  'bootstrap.servers',
  'security.protocol',
  'sasl.mechanism',
  'sasl.jaas.config',
  'sasl.username',
  'sasl.password',
  'ssl.ca.location',
  'ssl.certificate.location',
  'ssl.key.location',
  'ssl.key.password',
  'ssl.endpoint.identification.algorithm',
  'compression.type',
  'client.id',
  'session.timeout.ms',
  'request.timeout.ms',
  'acks',
  'client.dns.lookup',
] as const

const SECRET_KEYS = new Set(['sasl.jaas.config', 'sasl.password', 'ssl.key.password'])
const JKS_KEYS = /^ssl\.(truststore|keystore)\./
const PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const
const FILE_SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const

/** Java .properties syntax: `key=value`, `key: value` or `key value`; # and ! comments; \ continues a line. */
export function parsePropertiesText(text: string): Map<string, string> {
  const result = new Map<string, string>()
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] as string).replace(/^\s+/, '')
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < lines.length) line = line.slice(0, -1) + (lines[++i] as string).replace(/^\s+/, '')
    let key = ''
    let j = 0
    for (; j < line.length; j++) {
      const ch = line[j] as string
      if (ch === '\\' && j + 1 < line.length) {
        key += unescape(line[++j] as string)
        continue
      }
      if (ch === '=' || ch === ':' || /\s/.test(ch)) break
      key += ch
    }
    let rest = line.slice(j).replace(/^\s*/, '')
    if (rest.startsWith('=') || rest.startsWith(':')) rest = rest.slice(1).replace(/^\s*/, '')
    result.set(key, unescapeValue(rest))
  }
  return result
}

function unescape(ch: string): string {
  return ch === 'n' ? '\n' : ch === 't' ? '\t' : ch === 'r' ? '\r' : ch === 'f' ? '\f' : ch
}

function unescapeValue(value: string): string {
  return value.replace(/\\u([0-9a-fA-F]{4})|\\(.)/g, (_, hex: string | undefined, ch: string | undefined) => (hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : unescape(ch as string)))
}

/** username and password of a PlainLoginModule or ScramLoginModule JAAS line. */
export function parseJaasConfig(value: string): { module: string; options: Map<string, string> } | undefined {
  const match = /^\s*([\w.$]+)\s+(required|requisite|sufficient|optional)\s*([\s\S]*?)\s*;?\s*$/.exec(value)
  if (match === null) return undefined
  const options = new Map<string, string>()
  const pattern = /([\w.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^\s;]+))/g
  for (const option of (match[3] as string).matchAll(pattern)) {
    const raw = option[2] ?? option[3] ?? option[4] ?? ''
    options.set(option[1] as string, raw.replace(/\\(.)/g, '$1'))
  }
  return { module: match[1] as string, options }
}

const LOGIN_MODULES: Record<string, 'PLAIN' | 'SCRAM'> = {
  'org.apache.kafka.common.security.plain.PlainLoginModule': 'PLAIN',
  'org.apache.kafka.common.security.scram.ScramLoginModule': 'SCRAM',
}

/**
 * Reads the properties (already parsed) into connection settings. `baseDir` resolves relative
 * ssl.*.location paths (the properties file's folder). Throws WEIR_ERR_INVALID_OPTIONS listing every problem.
 */
export function clientPropertiesFrom(properties: ReadonlyMap<string, string>, source: string, baseDir: string = process.cwd()): ClientProperties {
  const violations: string[] = []
  const supported = new Set<string>(SUPPORTED_PROPERTIES)
  const unknown = [...properties.keys()].filter((k) => !supported.has(k) && !JKS_KEYS.test(k) && k !== 'sasl.mechanisms')
  if (unknown.length > 0) violations.push(`unsupported keys: ${unknown.join(', ')} (weir reads ${SUPPORTED_PROPERTIES.join(', ')})`)
  const jks = [...properties.keys()].filter((k) => JKS_KEYS.test(k))
  if (jks.length > 0) {
    violations.push(
      `${jks.join(', ')}: JKS/PKCS12 key and trust stores are not read; convert them to PEM (keytool -importkeystore -srckeystore store.jks -destkeystore store.p12 -deststoretype PKCS12, then openssl pkcs12 -in store.p12 -nokeys -out ca.pem / -nocerts -nodes -out client.key / -clcerts -nokeys -out client.pem) and set ssl.ca.location, ssl.certificate.location and ssl.key.location`,
    )
  }
  const get = (key: string) => {
    const value = properties.get(key)
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }
  const show = (key: string) => (SECRET_KEYS.has(key) ? '(hidden)' : JSON.stringify(properties.get(key)))

  let brokers: string[] | undefined
  const servers = get('bootstrap.servers')
  if (servers !== undefined) {
    brokers = servers.split(',').map((b) => b.trim().replace(/^[A-Za-z_]+:\/\//, '')).filter(Boolean)
    for (const broker of brokers) if (!/^[^:\s]+:\d+$/.test(broker)) violations.push(`bootstrap.servers: ${JSON.stringify(broker)} is not host:port`)
  }

  const protocol = (get('security.protocol') ?? 'PLAINTEXT').toUpperCase()
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) violations.push(`security.protocol must be one of ${PROTOCOLS.join(', ')}, got ${show('security.protocol')}`)
  const usesTls = protocol === 'SSL' || protocol === 'SASL_SSL'
  const usesSasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL'

  let sasl: KafkaConnection['sasl']
  const saslKeys = ['sasl.mechanism', 'sasl.mechanisms', 'sasl.jaas.config', 'sasl.username', 'sasl.password'].filter((k) => properties.has(k))
  if (!usesSasl && saslKeys.length > 0) violations.push(`${saslKeys.join(', ')} need security.protocol SASL_SSL or SASL_PLAINTEXT, got ${protocol}`)
  if (usesSasl) {
    const mechanism = (get('sasl.mechanism') ?? get('sasl.mechanisms'))?.toUpperCase()
    if (mechanism === undefined) violations.push(`sasl.mechanism is required with ${protocol} (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; GSSAPI/Kerberos is not supported)`)
    else if (mechanism === 'OAUTHBEARER') {
      violations.push('sasl.mechanism OAUTHBEARER cannot come from a file: give connection.sasl = { mechanism: "OAUTHBEARER", token } in code (a token provider callback)')
    } else if (!(FILE_SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
      violations.push(`sasl.mechanism must be one of ${FILE_SASL_MECHANISMS.join(', ')}, got ${show('sasl.mechanism')}`)
    }
    let username = get('sasl.username')
    let password = get('sasl.password')
    const jaas = get('sasl.jaas.config')
    if (jaas !== undefined) {
      const parsed = parseJaasConfig(jaas)
      const family = parsed === undefined ? undefined : LOGIN_MODULES[parsed.module]
      if (parsed === undefined) violations.push('sasl.jaas.config is not a JAAS line ("<LoginModule> required username=\\"...\\" password=\\"...\\";")')
      else if (family === undefined) violations.push(`sasl.jaas.config: login module ${parsed.module} is not supported (PlainLoginModule, ScramLoginModule)`)
      else {
        if (mechanism !== undefined && (family === 'PLAIN') !== (mechanism === 'PLAIN')) violations.push(`sasl.jaas.config uses ${parsed.module}, which does not match sasl.mechanism ${mechanism}`)
        username = parsed.options.get('username') ?? username
        password = parsed.options.get('password') ?? password
      }
    }
    if (username === undefined || username === '') violations.push('no SASL user name: sasl.jaas.config needs username="..."')
    if (password === undefined || password === '') violations.push('no SASL password: sasl.jaas.config needs password="..."')
    if (mechanism !== undefined && (FILE_SASL_MECHANISMS as readonly string[]).includes(mechanism) && username && password) {
      sasl = { mechanism: mechanism as (typeof FILE_SASL_MECHANISMS)[number], username, password }
    }
  }

  let tls: KafkaTls | true | undefined
  const sslKeys = ['ssl.ca.location', 'ssl.certificate.location', 'ssl.key.location', 'ssl.key.password', 'ssl.endpoint.identification.algorithm'].filter((k) => properties.has(k))
  if (!usesTls && sslKeys.length > 0) violations.push(`${sslKeys.join(', ')} need security.protocol SSL or SASL_SSL, got ${protocol}`)
  if (usesTls) {
    const read = (key: string): string | undefined => {
      const location = get(key)
      if (location === undefined) return undefined
      const path = isAbsolute(location) ? location : resolve(baseDir, location)
      try {
        const text = readFileSync(path, 'utf8')
        if (!text.includes('-----BEGIN ')) violations.push(`${key}: ${path} is not PEM (convert it: openssl x509 -inform der -in file -out file.pem)`)
        return text
      } catch (error) {
        violations.push(`${key}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
        return undefined
      }
    }
    const ca = read('ssl.ca.location')
    const cert = read('ssl.certificate.location')
    const key = read('ssl.key.location')
    if ((properties.has('ssl.certificate.location')) !== (properties.has('ssl.key.location'))) violations.push('ssl.certificate.location and ssl.key.location go together (a client certificate needs its key)')
    const keyPassword = get('ssl.key.password')
    const identification = properties.get('ssl.endpoint.identification.algorithm')?.trim().toLowerCase()
    if (identification !== undefined && identification !== '' && identification !== 'https') {
      violations.push(`ssl.endpoint.identification.algorithm must be https or empty, got ${show('ssl.endpoint.identification.algorithm')}`)
    }
    const settings: KafkaTls = {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(keyPassword === undefined ? {} : { keyPassword }),
      ...(identification === '' ? { checkServerName: false } : {}),
    }
    tls = Object.keys(settings).length === 0 ? true : settings
  }

  const compression = get('compression.type')?.toLowerCase()
  if (compression !== undefined && !(COMPRESSION_TYPES as readonly string[]).includes(compression)) {
    violations.push(`compression.type must be one of ${COMPRESSION_TYPES.join(', ')}, got ${show('compression.type')}`)
  }
  const acks = get('acks')
  if (acks !== undefined && acks !== 'all' && acks !== '-1') violations.push(`acks must be all (weir always writes with acks=all), got ${show('acks')}`)
  const dns = get('client.dns.lookup')
  if (dns !== undefined && dns !== 'use_all_dns_ips' && dns !== 'resolve_canonical_bootstrap_servers_only') {
    violations.push(`client.dns.lookup must be use_all_dns_ips or resolve_canonical_bootstrap_servers_only, got ${show('client.dns.lookup')}`)
  }
  const positive = (key: string): number | undefined => {
    const raw = get(key)
    if (raw === undefined) return undefined
    const n = Number(raw)
    if (!Number.isInteger(n) || n <= 0) {
      violations.push(`${key} must be a positive integer, got ${show(key)}`)
      return undefined
    }
    return n
  }
  const sessionTimeoutMs = positive('session.timeout.ms')
  const requestTimeoutMs = positive('request.timeout.ms')
  const clientId = get('client.id')

  if (violations.length > 0) throw invalidOptions(`Kafka client properties ${source}`, violations)
  const connection: KafkaConnection = {
    ...(tls === undefined ? {} : { tls }),
    ...(sasl === undefined ? {} : { sasl }),
    ...(compression === undefined ? {} : { compression: compression as CompressionType }),
  }
  return Object.freeze({
    ...(brokers === undefined ? {} : { brokers }),
    ...(clientId === undefined ? {} : { clientId }),
    connection,
    ...(sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs }),
    ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
  })
}

/** Reads a client properties file (`--kafka-config`, WEIR_KAFKA_CONFIG); certificate paths are relative to its folder. */
export function loadClientProperties(path: string): ClientProperties {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw invalidOptions('Kafka client properties', [`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`])
  }
  return clientPropertiesFrom(parsePropertiesText(text), path, dirname(resolve(path)))
}

/** For services' settings: the file's settings, its problems added to `violations` (`--kafka-config <path>: ...`). */
export function readKafkaConfig(path: string | undefined, violations: string[]): ClientProperties | undefined {
  if (path === undefined) return undefined
  try {
    return loadClientProperties(path)
  } catch (error) {
    if (!isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS')) throw error
    for (const violation of (error.details.violations as string[] | undefined) ?? [error.message]) violations.push(`--kafka-config ${path}: ${violation}`)
    return undefined
  }
}

export interface KafkaEnvironment {
  readonly brokers: string[]
  readonly connection?: KafkaConnection
  readonly clientId?: string
}

/**
 * Where scripts and commands find Kafka: KAFKA_BOOTSTRAP_SERVERS over the properties file's bootstrap.servers
 * (WEIR_KAFKA_CONFIG), then `fallback`; the file's security settings either way.
 */
export function kafkaFromEnvironment(env: NodeJS.ProcessEnv = process.env, fallback: readonly string[] = ['127.0.0.1:9092']): KafkaEnvironment {
  const file = env.WEIR_KAFKA_CONFIG?.trim()
  const properties = file ? loadClientProperties(file) : undefined
  const configured = env.KAFKA_BOOTSTRAP_SERVERS?.split(',').map((b) => b.trim()).filter(Boolean)
  const brokers = configured !== undefined && configured.length > 0 ? configured : (properties?.brokers ?? [...fallback])
  return {
    brokers,
    ...(properties === undefined ? {} : { connection: properties.connection }),
    ...(properties?.clientId === undefined ? {} : { clientId: properties.clientId }),
  }
}
