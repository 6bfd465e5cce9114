// The gateway service: `node gateway/main.ts [options]` (docs/gateway.md). Runs until SIGTERM/SIGINT, then
// shuts down gracefully (clients reconnect to another instance and resume).
// Exit codes: 0 stopped cleanly, 1 runtime failure, 2 invalid configuration.
import pino from 'pino'
import { collectDefaultMetrics } from 'prom-client'

import { isWeirError } from '../core/errors.ts'
import { gatewayUsage, loadCatalog, parseGatewayConfig, resolveAuth } from './config.ts'
import { subscribeGatewayLogging } from './logging.ts'
import { createGateway } from './server.ts'

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(gatewayUsage())
    return 0
  }
  let gateway
  let logger
  let config
  try {
    config = parseGatewayConfig(argv, process.env)
    logger = pino({ level: config.logLevel, base: { service: 'weir-gateway', pid: process.pid } })
    const catalog = await loadCatalog(config.catalogPath)
    const auth = await resolveAuth(config)
    gateway = createGateway({ ...config.options, auth, catalog })
    subscribeGatewayLogging(logger, gateway.instanceId)
    collectDefaultMetrics({ register: gateway.metrics.registry })
  } catch (error) {
    if (isWeirError(error, 'WEIR_ERR_INVALID_OPTIONS') || isWeirError(error, 'WEIR_ERR_SECRET_ON_COMMAND_LINE')) {
      const violations = (error.details.violations as string[] | undefined) ?? [error.message]
      process.stderr.write(`weir gateway: invalid configuration (${error.code}):\n${violations.map((v) => `  - ${v}`).join('\n')}\n\n${gatewayUsage()}`)
      return 2
    }
    throw error
  }
  try {
    const port = await gateway.start()
    logger.info({ port, instanceId: gateway.instanceId }, 'gateway listening')
  } catch (error) {
    logger.fatal({ err: error }, 'gateway cannot start')
    return 1
  }
  const running = gateway
  const log = logger
  // The service made the blob store from its configuration, so it closes it; createGateway leaves a store to its owner.
  const blobStore = config.options.blobs?.store
  return new Promise<number>((resolve) => {
    let signals = 0
    const onSignal = (signal: NodeJS.Signals) => {
      signals++
      if (signals > 1) {
        log.warn({ signal }, 'second signal: exiting without a clean stop')
        resolve(1)
        return
      }
      log.info({ signal }, 'gateway stopping: closing sockets (clients resume elsewhere), closing Kafka clients')
      const stop = async () => {
        await running.close()
        await blobStore?.close()
      }
      stop().then(
        () => {
          log.info('gateway stopped')
          resolve(0)
        },
        (error: unknown) => {
          log.error({ err: error }, 'gateway stop failed')
          resolve(1)
        },
      )
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`weir gateway: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
