// One client process of the gateway load test (forked by bench/gateway/load.ts with an IPC channel).
// It opens its share of the SDK connections, then sends `orders/orders/place` at its share of the total rate,
// open loop (command i is due at startAt + i / rate whatever the earlier ones do), and reports one sample per
// command: when it was sent and when its result arrived (epoch ms with fractions, comparable across processes
// on one machine), and the result envelope's createdAt (the worker's deadline arbiter made it).
import { SignJWT } from 'jose'

import { connect } from '../../gateway/client.ts'
import type { GatewayClient } from '../../gateway/client.ts'

export interface ClientStart {
  readonly type: 'start'
  readonly url: string
  readonly secret: string
  /** Distinguishes this process's subjects, order ids and request ids. */
  readonly name: string
  readonly connections: number
  /** Commands per second of this process. */
  readonly rate: number
  readonly seconds: number
  readonly ttlMs: number
}

export interface ClientGo {
  readonly type: 'go'
  /** Epoch ms of the first command. */
  readonly startAt: number
}

/** [requestId, sentAt, receivedAt, resultCreatedAt], times in epoch ms; receivedAt is -1 for a command that failed. */
export type Sample = readonly [string, number, number, number]

export type ClientMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly sent: number; readonly done: number; readonly failed: number }
  | { readonly type: 'done'; readonly samples: Sample[]; readonly errors: Record<string, number> }
  | { readonly type: 'failed'; readonly message: string }

const epochNow = () => performance.timeOrigin + performance.now()

function send(message: ClientMessage): Promise<void> {
  return new Promise((resolve, reject) => (process.send as NonNullable<typeof process.send>)(message, undefined, {}, (error) => (error ? reject(error) : resolve())))
}

function nextMessage<T extends { type: string }>(type: T['type']): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return
      process.removeListener('message', onMessage)
      resolve(message as T)
    }
    process.on('message', onMessage)
  })
}

async function run(start: ClientStart): Promise<void> {
  const key = new TextEncoder().encode(start.secret)
  const now = Math.floor(Date.now() / 1000)
  const clients: GatewayClient[] = await Promise.all(
    Array.from({ length: start.connections }, async (_, i) => {
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`${start.name}-${i}`).setExpirationTime(now + 3600).sign(key)
      return connect({ url: start.url, token, reconnect: false })
    }),
  )
  await send({ type: 'ready' })
  const { startAt } = await nextMessage<ClientGo>('go')

  const total = Math.round(start.rate * start.seconds)
  const samples: Sample[] = []
  const errors: Record<string, number> = {}
  let sent = 0
  let done = 0
  let failed = 0
  const progress = setInterval(() => void send({ type: 'progress', sent, done, failed }), 1000)
  let allDone: () => void = () => {}
  const finished = new Promise<void>((resolve) => (allDone = resolve))
  const settle = () => {
    if (done + failed === total) allDone()
  }
  const sendOne = (i: number) => {
    const client = clients[i % clients.length] as GatewayClient
    const requestId = `${start.name}-${i}`
    const sentAt = epochNow()
    sent++
    client.send('orders/orders/place', { orderId: requestId, sku: 'bench', qty: 1 }, { ttlMs: start.ttlMs, requestId }).then(
      (result) => {
        samples.push([requestId, sentAt, epochNow(), result.createdAt])
        done++
        settle()
      },
      (error: unknown) => {
        const code = (error as { code?: string }).code ?? String(error)
        errors[code] = (errors[code] ?? 0) + 1
        samples.push([requestId, sentAt, -1, -1])
        failed++
        settle()
      },
    )
  }
  // Sends every command that is due, then sleeps until the next one is: no drift, and bursts after a stall
  // (a late timer) are sent at once, as an open-loop generator must.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = epochNow() - startAt
      while (sent < total && (sent * 1000) / start.rate <= elapsed) sendOne(sent)
      if (sent >= total) return resolve()
      setTimeout(tick, Math.max(0, (sent * 1000) / start.rate - (epochNow() - startAt)))
    }
    setTimeout(tick, Math.max(0, startAt - epochNow()))
  })
  if (total > 0) await finished
  clearInterval(progress)
  for (const client of clients) client.close()
  await send({ type: 'done', samples, errors })
}

if (process.send === undefined) {
  process.stderr.write('bench/gateway/client-process.ts runs as a child of bench/gateway/load.ts (it needs an IPC channel)\n')
  process.exit(2)
}
nextMessage<ClientStart>('start')
  .then(run)
  .then(
    () => process.exit(0),
    async (error: unknown) => {
      await send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }).catch(() => {})
      process.exit(1)
    },
  )
