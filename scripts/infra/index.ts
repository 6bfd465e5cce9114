// Infrastructure for tests, the demo, chaos runs and benchmarks: a Kafka broker, Redis and (when asked) an
// S3-compatible server, provided once per run and stopped on exit, Ctrl-C and failure.
import type { KafkaConnection } from '../../kafka/index.ts'
import { provideKafka, type KafkaBroker } from './kafka.ts'
import { createProgress, InfraUnavailable, type Progress } from './progress.ts'
import { provideRedis, type RedisServer } from './redis.ts'
import { provideS3, type S3Server } from './s3.ts'

export { InfraUnavailable, createProgress, provideS3, type Progress, type S3Server }
export { stopProcess } from './kafka.ts'
export type { KafkaBroker, LocalNode, SecureListener } from './kafka.ts'

export interface Infrastructure {
  readonly kafka: KafkaBroker
  readonly redis: RedisServer | undefined
  /** The S3-compatible server (`s3: true` only). */
  readonly s3: S3Server | undefined
  /** TLS and SASL of the cluster (WEIR_KAFKA_CONFIG with an external cluster), for the clients a script makes. */
  readonly connection: KafkaConnection | undefined
  /**
   * Environment for child processes (tests, workers): KAFKA_BOOTSTRAP_SERVERS and REDIS_URL; with a secure
   * listener also KAFKA_SECURE_BOOTSTRAP_SERVERS and WEIR_SECURE_KAFKA_DIR (its CA and client properties files).
   */
  readonly env: Record<string, string>
  stop(): Promise<void>
}

export interface InfrastructureOptions {
  redis?: boolean
  /** An S3-compatible server (WEIR_S3_ENDPOINT, else a local S3Proxy): off unless asked. */
  s3?: boolean
  progress?: Progress
  /** Nodes of the local cluster (default 1; a KAFKA_BOOTSTRAP_SERVERS broker is used as it is). */
  brokers?: number
  /** A SASL_SSL listener with users and ACLs next to the PLAINTEXT one (local brokers only). */
  secure?: boolean
}

export async function provideInfrastructure(options: InfrastructureOptions = {}): Promise<Infrastructure> {
  const progress = options.progress ?? createProgress()
  const nodes = options.brokers ?? 1
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) throw new InfraUnavailable(`the number of brokers must be an integer from 1 to 9, got ${options.brokers}`)
  const redis = options.redis === false ? undefined : await provideRedis(progress)
  const kafka = await provideKafka(progress, { nodes, secure: options.secure === true })
  progress.done(`Kafka ready (${kafka.kind}): ${kafka.brokers.join(',')}`)
  const s3 = options.s3 === true ? await provideS3(progress).catch(async (error: unknown) => {
    await kafka.stop()
    throw error
  }) : undefined
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= Promise.all([kafka.stop(), s3?.stop()]).then(() => {})
    return stopping
  }
  // Stop the broker however this process ends.
  const onSignal = (signal: NodeJS.Signals) => {
    progress.step(`${signal}: stopping infrastructure`)
    void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', () => {
    // Last resort for paths that skip stop(): the watchdog also kills the broker within a second.
    void stop()
  })
  return {
    kafka,
    redis,
    s3,
    connection: kafka.connection,
    env: {
      KAFKA_BOOTSTRAP_SERVERS: kafka.brokers.join(','),
      ...(redis === undefined ? {} : { REDIS_URL: redis.url }),
      ...s3?.env,
      ...(kafka.secure === undefined ? {} : { KAFKA_SECURE_BOOTSTRAP_SERVERS: kafka.secure.brokers.join(','), WEIR_SECURE_KAFKA_DIR: kafka.secure.dir }),
    },
    stop,
  }
}
