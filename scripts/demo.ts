// `npm run demo`: Kafka (scripts/infra), the orders service in a worker process, the gateway process, and the
// demo page (examples/orders/demo) served with a token endpoint. Ctrl-C stops everything it started.
//
//   npm run demo -- [--port 8080] [--gateway-port 8081] [--host 127.0.0.1] [--partitions 3] [--prefix orders] [--no-open]
//
// `startDemo()` starts the worker, the gateway and the page server against given brokers; the Chromium test
// (test/demo/demo.test.ts) uses it directly. Its parts are in demo/: start.ts (startDemo), children.ts (the
// worker and gateway processes) and page-server.ts (the page, its token endpoint, the SDK's source).
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'

import { createProgress, InfraUnavailable, provideInfrastructure } from './infra/index.ts'
import type { Progress } from './infra/index.ts'
import { startDemo } from './demo/start.ts'
import type { Demo } from './demo/start.ts'

export { startDemo } from './demo/start.ts'
export type { Demo, DemoOptions } from './demo/start.ts'

const USAGE = `Usage: npm run demo -- [options]

  --port <n>           port of the demo page (default 8080; 0: any free port)
  --gateway-port <n>   port of the WebSocket gateway (default 8081; 0: any free port)
  --host <addr>        address both bind (default 127.0.0.1; 0.0.0.0 to reach the demo from other machines)
  --partitions <n>     partitions of the service's topics (default 3)
  --prefix <name>      topic prefix (default orders)
  --no-open            do not open a browser
  -h, --help           this help

Kafka: KAFKA_BOOTSTRAP_SERVERS when set, else a broker is started (docs/development.md).
`

function openBrowser(url: string, progress: Progress): void {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'linux' && (process.env.DISPLAY || process.env.WAYLAND_DISPLAY) ? 'xdg-open' : undefined
  if (opener === undefined) return
  const child = spawn(opener, [url], { stdio: 'ignore', detached: true })
  child.on('error', () => progress.step(`could not start ${opener}: open ${url} yourself`))
  child.unref()
}

async function main(): Promise<number> {
  let values
  try {
    values = parseArgs({
      options: {
        port: { type: 'string', default: '8080' },
        'gateway-port': { type: 'string', default: '8081' },
        host: { type: 'string', default: '127.0.0.1' },
        partitions: { type: 'string', default: '3' },
        prefix: { type: 'string', default: 'orders' },
        'no-open': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const numbers = { port: Number(values.port), gatewayPort: Number(values['gateway-port']), partitions: Number(values.partitions) }
  const bad = Object.entries(numbers).filter(([key, n]) => !Number.isInteger(n) || n < (key === 'partitions' ? 1 : 0) || n > 65_535)
  if (bad.length > 0 || !/^[A-Za-z0-9._-]+$/.test(values.prefix)) {
    process.stderr.write(`invalid options: ${[...bad.map(([k]) => k), ...(/^[A-Za-z0-9._-]+$/.test(values.prefix) ? [] : ['prefix'])].join(', ')}\n\n${USAGE}`)
    return 2
  }

  const progress = createProgress('demo')
  // provideInfrastructure stops the broker on a signal and exits; here the demo's processes must stop first.
  const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') }
  const infra = await provideInfrastructure({ progress, redis: false })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const listener of process.listeners(signal)) if (!before[signal].includes(listener)) process.removeListener(signal, listener)
  }
  let demo: Demo | undefined
  let signals = 0
  const aborter = new AbortController()
  const finished = new Promise<number>((resolveFinished) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signals++
      if (signals > 1) {
        progress.step(`${signal} again: exiting without waiting`)
        resolveFinished(1)
        return
      }
      progress.step(`${signal}: stopping the gateway, the worker${infra.kafka.kind === 'external' ? '' : ' and Kafka'}`)
      aborter.abort()
      void (async () => {
        await demo?.stop()
        await infra.stop()
        progress.done('stopped')
        resolveFinished(0)
      })()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  try {
    demo = await startDemo({ brokers: infra.kafka.brokers, connection: infra.connection, progress, ...numbers, host: values.host, prefix: values.prefix, signal: aborter.signal })
  } catch (error) {
    if (signals > 0) return finished
    await infra.stop()
    throw error
  }
  if (signals > 0) return finished
  progress.done(`demo ready: ${demo.url}`)
  process.stderr.write(
    [
      '',
      `  Open ${demo.url}`,
      `  (gateway ${demo.gatewayUrl}; logs ${demo.logs.worker}, ${demo.logs.gateway})`,
      '',
      '  Try: place an order and see its result and the order-placed event; cancel it; send the slow command',
      '  (2.5 s of work, 1 s TTL) and see the timeout; send a payload that breaks the schema; go offline right after',
      '  sending a slow command with a longer TTL, wait, go online, and see its result replayed on reconnect.',
      '  Ctrl-C stops everything.',
      '',
    ].join('\n'),
  )
  if (!values['no-open']) openBrowser(demo.url, progress)
  return finished
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof InfraUnavailable) process.stderr.write(`\n[weir] cannot start the demo: ${error.message}\n`)
      else process.stderr.write(`\n[weir] the demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
}
