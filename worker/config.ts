// Worker configuration: command-line flags over environment variables over defaults, validated at start
// with every problem reported at once (WEIR_ERR_INVALID_OPTIONS).
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { invalidOptions, isWeirError } from '../core/errors.ts'
import { LOG_LEVELS, readSettings } from '../core/settings.ts'
import { parseFaultRules } from '../processors/faults/rules.ts'
import type { FaultRule } from '../processors/faults/rules.ts'
import type { ErrorPolicy } from '../topology/runtime/error-policy.ts'
import { readKafkaConfig } from '../kafka/index.ts'
import type { KafkaConnection, ReplicationSettings } from '../kafka/index.ts'

export interface WorkerConfig {
  /** Path of the module that exports `topology` (and optionally `applicationId`). */
  topologyModule: string
  applicationId: string | undefined
  brokers: string[]
  /** TLS, SASL and compression from the client properties file (--kafka-config). */
  connection: KafkaConnection | undefined
  /** Replication of the topics the worker creates (default: the broker's defaults). */
  replication: ReplicationSettings
  stateDir: string
  commitIntervalMs: number
  commitWhenIdle: boolean
  /** Input records each task processes at the same time (1: one after the other). */
  maxInFlight: number
  errorPolicy: ErrorPolicy
  /** Failures in a row at one offset, refused by the broker, before the error policy applies to the record there. */
  maxTaskFailures: number
  /** The dead-letter topics' record size limit, bytes (undefined: asked from the broker per topic). */
  maxMessageBytes: number | undefined
  sessionTimeoutMs: number
  /** Static group membership (Kafka's group.instance.id); undefined: dynamic membership. */
  instanceId: string | undefined
  /** How long a stop (SIGTERM) may take before the worker exits anyway, naming what it did not commit. */
  shutdownTimeoutMs: number
  /** Health, readiness and metrics; 0 picks a free port, -1 disables the server. */
  httpPort: number
  httpHost: string
  logLevel: string
  /** Fault injection (docs/faults.md): off unless true, and then only in a module that exports `faults`. */
  faults: FaultConfig | undefined
}

export interface FaultConfig {
  /** The rules file's rules, in force from the start (the control topic changes them at run time). */
  rules: FaultRule[]
  /** The control topic; undefined: `<applicationId>.faults`. */
  topic: string | undefined
}

/** Every setting: flag name, environment variable, default, and what it is for (docs/worker.md shows this table). */
export const settings = [
  { flag: 'application-id', env: 'WEIR_APPLICATION_ID', default: '(the module\'s `applicationId` export)', help: 'consumer group, transactional ids and changelog topic prefix' },
  { flag: 'brokers', env: 'KAFKA_BOOTSTRAP_SERVERS', default: '127.0.0.1:9092', help: 'Kafka bootstrap servers, comma separated (over the file\'s bootstrap.servers)' },
  { flag: 'kafka-config', env: 'WEIR_KAFKA_CONFIG', default: '(none)', help: 'Java client properties file: bootstrap.servers, security.protocol, sasl.*, ssl.*, compression.type (docs/production.md)' },
  { flag: 'replication-factor', env: 'WEIR_REPLICATION_FACTOR', default: '(broker default)', help: 'replicas of the changelog and dead-letter topics the worker creates' },
  { flag: 'min-insync-replicas', env: 'WEIR_MIN_INSYNC_REPLICAS', default: '(broker default)', help: 'min.insync.replicas of the topics the worker creates' },
  { flag: 'state-dir', env: 'WEIR_STATE_DIR', default: '$TMPDIR/weir-state', help: 'folder for RocksDB stores and checkpoints' },
  { flag: 'commit-interval-ms', env: 'WEIR_COMMIT_INTERVAL_MS', default: '100', help: 'how often each task commits its transaction while records keep coming' },
  { flag: 'commit-when-idle', env: 'WEIR_COMMIT_WHEN_IDLE', default: 'true', help: 'also commit as soon as every fetched record is processed (true or false)' },
  { flag: 'max-in-flight', env: 'WEIR_MAX_IN_FLIGHT', default: '1', help: 'input records each task processes at the same time: records of different keys overlap while handlers await I/O, one key stays in order (1 to 10000)' },
  { flag: 'error-policy', env: 'WEIR_ERROR_POLICY', default: 'dead-letter', help: 'processing errors: dead-letter, skip or fail' },
  { flag: 'max-task-failures', env: 'WEIR_MAX_TASK_FAILURES', default: '5', help: 'failures in a row at one offset (refused by the broker) before the error policy applies to that record' },
  { flag: 'max-message-bytes', env: 'WEIR_MAX_MESSAGE_BYTES', default: '(each topic\'s max.message.bytes)', help: 'largest dead letter, bytes; larger ones are truncated to fit' },
  { flag: 'session-timeout-ms', env: 'WEIR_SESSION_TIMEOUT_MS', default: '10000', help: 'how long a silent worker keeps its partitions' },
  { flag: 'instance-id', env: 'WEIR_INSTANCE_ID', default: '(unset: dynamic membership)', help: 'static group membership (group.instance.id): a restart within the session timeout keeps the partitions, no rebalance' },
  { flag: 'shutdown-timeout-ms', env: 'WEIR_SHUTDOWN_TIMEOUT_MS', default: '30000', help: 'longest stop on SIGTERM; past it the worker exits with code 3 naming the work not committed' },
  { flag: 'http-port', env: 'WEIR_HTTP_PORT', default: '9464', help: '/health, /ready and /metrics (0: any free port, -1: off)' },
  { flag: 'http-host', env: 'WEIR_HTTP_HOST', default: '0.0.0.0', help: 'address the HTTP server binds' },
  { flag: 'log-level', env: 'WEIR_LOG_LEVEL', default: 'info', help: 'pino level: fatal, error, warn, info, debug, trace' },
  { flag: 'faults', env: 'WEIR_FAULTS', default: 'false', help: 'fault injection (true or false), for testing only; the module must export `faults` (docs/faults.md)' },
  { flag: 'fault-rules', env: 'WEIR_FAULT_RULES', default: '(none)', help: 'JSON file of fault rules in force from the start (with --faults true)' },
  { flag: 'faults-topic', env: 'WEIR_FAULTS_TOPIC', default: '<application id>.faults', help: 'control topic that sets and deletes fault rules at run time (with --faults true)' },
] as const

export function parseWorkerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): WorkerConfig {
  const { positionals, violations, value, integer, boolean } = readSettings('worker', settings, argv, env, { allowPositionals: true })

  const [topologyModule, ...extra] = positionals
  if (topologyModule === undefined) violations.push('the topology module is missing: weir worker <module.ts> [options]')
  if (extra.length > 0) violations.push(`unexpected arguments: ${extra.join(' ')}`)
  const properties = readKafkaConfig(value('kafka-config'), violations)
  const brokers = (value('brokers')?.split(',') ?? properties?.brokers ?? ['127.0.0.1:9092']).map((b) => b.trim()).filter(Boolean)
  for (const broker of brokers) if (!/^[^:\s]+:\d+$/.test(broker)) violations.push(`broker ${JSON.stringify(broker)} is not host:port`)
  const errorPolicy = value('error-policy') ?? 'dead-letter'
  if (!['dead-letter', 'skip', 'fail'].includes(errorPolicy)) violations.push(`--error-policy must be dead-letter, skip or fail, got ${errorPolicy}`)
  const logLevel = value('log-level') ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) violations.push(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${logLevel}`)
  const applicationId = value('application-id')
  if (applicationId !== undefined && !/^[A-Za-z0-9._-]+$/.test(applicationId)) violations.push('--application-id may use letters, digits, ., _ and - only')

  const instanceId = value('instance-id')
  if (instanceId !== undefined && !/^[A-Za-z0-9._-]+$/.test(instanceId)) violations.push('--instance-id may use letters, digits, ., _ and - only')

  const faults = readFaultConfig(boolean('faults', false), value('fault-rules'), value('faults-topic'), violations)

  const config: WorkerConfig = {
    topologyModule: topologyModule ?? '',
    applicationId,
    brokers,
    connection: properties?.connection,
    replication: {
      ...(value('replication-factor') === undefined ? {} : { replicationFactor: integer('replication-factor', -1, 1) }),
      ...(value('min-insync-replicas') === undefined ? {} : { minInsyncReplicas: integer('min-insync-replicas', 1, 1) }),
    },
    stateDir: value('state-dir') ?? join(tmpdir(), 'weir-state'),
    commitIntervalMs: integer('commit-interval-ms', 100, 1),
    commitWhenIdle: boolean('commit-when-idle', true),
    maxInFlight: integer('max-in-flight', 1, 1),
    errorPolicy: errorPolicy as ErrorPolicy,
    maxTaskFailures: integer('max-task-failures', 5, 1),
    maxMessageBytes: value('max-message-bytes') === undefined ? undefined : integer('max-message-bytes', 1_048_588, 1024),
    sessionTimeoutMs: integer('session-timeout-ms', properties?.sessionTimeoutMs ?? 10_000, 1000),
    instanceId,
    shutdownTimeoutMs: integer('shutdown-timeout-ms', 30_000, 1),
    httpPort: integer('http-port', 9464, -1),
    httpHost: value('http-host') ?? '0.0.0.0',
    logLevel,
    faults,
  }
  if (violations.length > 0) throw invalidOptions('worker', violations)
  return Object.freeze(config)
}

function readFaultConfig(enabled: boolean, rulesFile: string | undefined, topic: string | undefined, violations: string[]): FaultConfig | undefined {
  if (!enabled) {
    if (rulesFile !== undefined) violations.push('--fault-rules needs --faults true')
    if (topic !== undefined) violations.push('--faults-topic needs --faults true')
    return undefined
  }
  if (topic !== undefined && !/^[A-Za-z0-9._-]{1,249}$/.test(topic)) violations.push('--faults-topic must be a Kafka topic name')
  let rules: FaultRule[] = []
  if (rulesFile !== undefined) {
    try {
      rules = parseFaultRules(readFileSync(rulesFile, 'utf8'))
    } catch (error) {
      violations.push(`--fault-rules ${rulesFile}: ${isWeirError(error) ? `${error.code}: ${error.message}` : (error as Error).message}`)
    }
  }
  return { rules, topic }
}

export function usage(): string {
  const rows = settings.map((s) => `  --${s.flag.padEnd(20)} ${s.env.padEnd(26)} ${s.help} (default ${s.default})`)
  return ['Usage: weir worker <topology-module> [options]', '', 'Options (flag, environment variable):', ...rows, ''].join('\n')
}
