// The gateway of the load test, in its own process (forked by bench/gateway/load.ts with an IPC channel): the
// orders example's catalog, HS256 tokens, and the options the run asks for. It is `gateway/main.ts` minus
// logging and metrics, with the run's `fetchMaxWaitMs` and `commandLingerMs`.
import { ordersRegistry } from '../../examples/orders/service.ts'
import { createGateway } from '../../gateway/server.ts'

export interface GatewayProcessOptions {
  readonly brokers: readonly string[]
  readonly prefix: string
  readonly secret: string
  /** The live stream's fetch wait (gateway default 200 ms). */
  readonly fetchMaxWaitMs: number
  /** The command writer's linger (gateway default 0). */
  readonly commandLingerMs: number
}

export type GatewayProcessMessage = { readonly type: 'listening'; readonly port: number } | { readonly type: 'failed'; readonly message: string }

const options = JSON.parse(process.env.WEIR_BENCH_GATEWAY ?? 'null') as GatewayProcessOptions | null
if (options === null || process.send === undefined) {
  process.stderr.write('bench/gateway/gateway-process.ts runs as a child of bench/gateway/load.ts\n')
  process.exit(2)
}
const report = (message: GatewayProcessMessage) => process.send?.(message)

const gateway = createGateway({
  catalog: ordersRegistry({ prefix: options.prefix }).catalog,
  brokers: [...options.brokers],
  auth: { hs256Secret: options.secret },
  sessionSecret: options.secret,
  host: '127.0.0.1',
  port: 0,
  // Every connection sends far below this; the limiter must not shape the load.
  rateLimit: { ratePerSecond: 10_000, burst: 20_000 },
  // The broadcast scenario bursts thousands of frames per socket; the bare uWS server gets the same limit.
  maxBackpressure: 16 * 1024 * 1024,
  fetchMaxWaitMs: options.fetchMaxWaitMs,
  commandLingerMs: options.commandLingerMs,
  instanceId: 'bench',
})
gateway.start().then(
  (port) => report({ type: 'listening', port }),
  (error: unknown) => {
    report({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) })
    process.exit(1)
  },
)
process.once('SIGTERM', () => {
  gateway.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
})
