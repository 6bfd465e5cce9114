// A consumer that stops reading is disconnected at the backpressure limit instead of growing the gateway's
// memory; it comes back with its offsets and gets everything it missed.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { connect } from '../../gateway/client.ts'
import type { EventFrame, SubscribedFrame } from '../../gateway/protocol.ts'
import { closeAdmin } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { createGatewayTopics, openRawSocket, produceEvents, startGateway, testCatalog, token } from './helpers.ts'

after(closeAdmin)

test('a slow consumer is disconnected at the backpressure limit, then resumes by offsets without loss', async (t) => {
  const topics = await createGatewayTopics(t, 1)
  const gateway = await startGateway(t, { catalog: testCatalog(topics), maxBackpressure: 256 * 1024 })
  const slow = await openRawSocket(t, gateway.port, await token({ sub: 'slow' }))
  slow.sendText(JSON.stringify({ type: 'subscribe', topic: 'orders' }))
  await slow.frameCount(2)
  const subscribed = slow.frames.find((f): f is SubscribedFrame => f.type === 'subscribed')
  assert.ok(subscribed !== undefined)
  slow.pause()

  // More than the kernel's socket buffers and the gateway's limit together.
  const count = 80
  const filler = 'x'.repeat(100_000)
  await produceEvents(topics.events, Array.from({ length: count }, (_, n) => ({ n, filler })), 0, 5)
  await waitFor(() => gateway.connections() === 0, { what: 'the slow consumer to be disconnected', timeoutMs: 30_000 })
  const metrics = await gateway.metrics.registry.getSingleMetricAsString('weir_gateway_backpressure_closes_total')
  assert.match(metrics, /weir_gateway_backpressure_closes_total\{[^}]*\} 1$/m)

  // It comes back (as the SDK does) with the positions it had: every event once, in order.
  const events: EventFrame[] = []
  const client = await connect({ url: `ws://127.0.0.1:${gateway.port}/ws`, token: await token({ sub: 'slow' }), offsets: subscribed.positions })
  t.after(() => client.close())
  client.subscribe('orders', (event) => events.push(event))
  // One partition, in order: once the last event is here, any copy of an earlier one would be too.
  await waitFor(() => events.some((e) => (e.payload as { n: number }).n === count - 1), { what: `${count} events`, timeoutMs: 30_000 })
  assert.deepEqual(
    events.map((e) => (e.payload as { n: number }).n),
    Array.from({ length: count }, (_, n) => n),
  )
})
