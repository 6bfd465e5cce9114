// Broadcast in the gateway load test: events delivered by the gateway to every subscribed connection, and the
// same number of connections on a bare uWS server publishing frames of the same shape (the ceiling).
import { SignJWT } from 'jose'

import { encodeEnvelope } from '../../envelope/codec.ts'
import { createEnvelope } from '../../envelope/envelope.ts'
import { BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL } from '../../gateway/protocol.ts'
import { createProducer } from '../../kafka/index.ts'
import type { BareUwsMessage } from './bare-uws-process.ts'
import { forkChild, messageFrom } from './children.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

export interface BroadcastSettings {
  readonly connections: number
  readonly events: number
}

/** N plain WebSocket clients that count frames without parsing them (the same clients for both servers). */
async function countingClients(url: string, connections: number, protocols: (i: number) => Promise<string[]>, onFrame: (data: string) => void): Promise<WebSocket[]> {
  return Promise.all(
    Array.from({ length: connections }, async (_, i) => {
      const ws = new WebSocket(url, await protocols(i))
      ws.onmessage = (event: MessageEvent) => onFrame(event.data as string)
      await new Promise((r) => ws.addEventListener('open', r, { once: true }))
      return ws
    }),
  )
}

/** Counts event frames until `expected`; timed from the first delivery to the last (the fan-out, not the producer's first batch). */
function deliveryCounter(expected: number) {
  let delivered = 0
  let first = 0
  let done: (perSecond: number) => void = () => {}
  const finished = new Promise<number>((r) => (done = r))
  return {
    finished,
    onEvent() {
      if (delivered === 0) first = performance.now()
      delivered++
      if (delivered === expected) done(Math.round(expected / ((performance.now() - first) / 1000)))
    },
  }
}

export async function benchBroadcast(brokers: readonly string[], eventsTopic: string, port: number, settings: BroadcastSettings, secret: string): Promise<number> {
  const { connections, events } = settings
  const counter = deliveryCounter(events * connections)
  let subscribed = 0
  let allSubscribed: () => void = () => {}
  const ready = new Promise<void>((r) => (allSubscribed = r))
  const key = new TextEncoder().encode(secret)
  const now = Math.floor(Date.now() / 1000)
  const sockets = await countingClients(
    `ws://127.0.0.1:${port}/ws`,
    connections,
    async (i) => [SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`listener-${i}`).setExpirationTime(now + 3600).sign(key)}`],
    (data) => {
      if (data.startsWith('{"type":"event"')) counter.onEvent()
      else if (data.startsWith('{"type":"subscribed"') && ++subscribed === connections) allSubscribed()
    },
  )
  for (const ws of sockets) ws.send(JSON.stringify({ type: 'subscribe', topic: 'orders' }))
  await ready
  const producer = createProducer({ ...kafkaSecurity(), brokers: [...brokers], clientId: 'bench-events' })
  try {
    for (let i = 0; i < events; i += 200) {
      const batch = Array.from({ length: Math.min(200, events - i) }, (_, j) => ({
        topic: eventsTopic,
        key: `o-${i + j}`,
        value: encodeEnvelope(eventEnvelope(i + j)),
      }))
      await producer.send(batch)
    }
    return await counter.finished
  } finally {
    await producer.close()
    for (const ws of sockets) ws.close()
  }
}

export function eventEnvelope(n: number) {
  return createEnvelope({ kind: 'event', contextPath: 'orders', alias: 'order-placed', topicAlias: 'orders', payload: { orderId: `o-${n}`, sku: 'bench', qty: 1 } })
}

export async function benchBareUws(frame: string, dir: string, settings: BroadcastSettings): Promise<number> {
  const server = forkChild('bare-uws', 'bare-uws-process.ts', { LIBUS_LISTEN_EXCLUSIVE_PORT: '1' }, dir)
  try {
    const { port } = await messageFrom<Extract<BareUwsMessage, { type: 'listening' }>>(server, 'listening')
    const counter = deliveryCounter(settings.events * settings.connections)
    const sockets = await countingClients(`ws://127.0.0.1:${port}/ws`, settings.connections, async () => [], (data) => {
      if (data.startsWith('{"type":"event"')) counter.onEvent()
    })
    // Every socket subscribes in its open handler, before the open frame reaches the client.
    server.process.send({ type: 'publish', frame, count: settings.events })
    const perSecond = await counter.finished
    for (const ws of sockets) ws.close()
    return perSecond
  } finally {
    await server.stop()
  }
}
