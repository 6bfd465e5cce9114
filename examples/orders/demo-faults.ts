// The demo page's fault switch (docs/demo.md, "Faults"): `GET /faults` answers the presets, the one switched on,
// the rules the worker has in force and what it injected so far (read from its /metrics); `POST /faults` with `{"preset": "<id>"}` writes
// the preset's rule to the worker's fault control topic (clearing the one before), `{"preset": "off"}` clears.
// The worker runs with --faults true, so the switch takes effect within a fetch round, without a restart.
import type { IncomingMessage, ServerResponse } from 'node:http'

import { createProducer } from '../../kafka/index.ts'
import type { KafkaConnection, KafkaProducer } from '../../kafka/index.ts'

export interface FaultPreset {
  readonly id: string
  readonly label: string
  /** What to do on the page to see it, and what it shows. */
  readonly hint: string
  readonly rule: Readonly<Record<string, unknown>>
}

export const FAULT_PRESETS: readonly FaultPreset[] = [
  {
    id: 'timeout',
    label: 'Place waits 2 s',
    hint: 'Place an order with a TTL of 1000 ms: the handler is held 2 s, the deadline wins (timeout), the result is kept as late.',
    rule: { id: 'demo-timeout', kind: 'delay', delayMs: 2000, match: { path: 'orders/orders/place' } },
  },
  {
    id: 'retry',
    label: 'Place fails half the time (retriable)',
    hint: 'Place a few orders: each attempt fails with a probability of 0.5 and is retried (3 attempts): most end ok after a retry, some with WEIR_ERR_RETRIES_EXHAUSTED. The injected count grows faster than the orders.',
    rule: { id: 'demo-retry', kind: 'error', retriable: true, probability: 0.5, match: { path: 'orders/orders/place' } },
  },
  {
    id: 'error',
    label: 'Cancel fails (non-retriable)',
    hint: 'Cancel an order: an error result WEIR_ERR_NON_RETRIABLE at once, no retry, and a dead letter.',
    rule: { id: 'demo-error', kind: 'error', match: { path: 'orders/orders/cancel' } },
  },
  {
    id: 'drop',
    label: 'Place loses its result',
    hint: 'Place an order with a TTL of 1000 ms: the handler runs, its result is lost, the deadline answers with a timeout (without a TTL the row stays acked).',
    rule: { id: 'demo-drop', kind: 'drop', match: { path: 'orders/orders/place' } },
  },
]

export interface DemoFaults {
  /** Answers /faults; false for any other request. */
  handle(url: URL, request: IncomingMessage, response: ServerResponse): Promise<boolean>
  close(): Promise<void>
}

/**
 * Clears the control topic (it outlives a demo run: the topics are kept) and answers /faults from then on. The
 * worker creates the control topic before it is ready, so call this once it is.
 */
export async function startDemoFaults(options: { brokers: readonly string[]; connection?: KafkaConnection | undefined; controlTopic: string; metricsUrl: string }): Promise<DemoFaults> {
  const producer: KafkaProducer = createProducer({ brokers: [...options.brokers], connection: options.connection, clientId: 'weir-demo-faults' })
  try {
    await producer.send([{ topic: options.controlTopic, key: 'clear', value: JSON.stringify({ op: 'clear' }) }])
  } catch (error) {
    await producer.close()
    throw error
  }
  let active = 'off'
  /** What the worker injected, and how many rules it has in force (it applies a switch within a fetch round). */
  const read = async (): Promise<{ injected: Array<{ kind: string; rule: string; count: number }>; rulesInForce: number }> => {
    const text = await (await fetch(options.metricsUrl)).text()
    const found: Array<{ kind: string; rule: string; count: number }> = []
    for (const match of text.matchAll(/^weir_faults_injected_total\{([^}]*)\} (\d+)$/gm)) {
      const labels = Object.fromEntries([...(match[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
      found.push({ kind: labels.kind ?? '', rule: labels.rule ?? '', count: Number(match[2]) })
    }
    const rules = /^weir_fault_rules\{[^}]*\} (\d+)$/m.exec(text)
    return { injected: found, rulesInForce: Number(rules?.[1] ?? 0) }
  }
  const state = async () => ({ active, presets: FAULT_PRESETS.map(({ id, label, hint }) => ({ id, label, hint })), ...(await read()) })
  const send = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body))
  }
  return {
    async handle(url, request, response) {
      if (url.pathname !== '/faults') return false
      if (request.method === 'GET') {
        send(response, 200, await state())
        return true
      }
      if (request.method !== 'POST') return false
      let body = ''
      for await (const chunk of request) body += String(chunk)
      let preset: string | undefined
      try {
        preset = (JSON.parse(body) as { preset?: unknown }).preset as string | undefined
      } catch {
        preset = undefined
      }
      const chosen = FAULT_PRESETS.find((p) => p.id === preset)
      if (preset !== 'off' && chosen === undefined) {
        send(response, 400, { code: 'WEIR_ERR_INVALID_ARGUMENT', message: `preset must be off or one of ${FAULT_PRESETS.map((p) => p.id).join(', ')}` })
        return true
      }
      // One preset at a time: clear what was on, then set the new one (records in order on one partition).
      await producer.send([
        { topic: options.controlTopic, key: 'clear', value: JSON.stringify({ op: 'clear' }) },
        ...(chosen === undefined ? [] : [{ topic: options.controlTopic, key: String(chosen.rule.id), value: JSON.stringify({ op: 'set', rule: chosen.rule }) }]),
      ])
      active = chosen?.id ?? 'off'
      send(response, 200, await state())
      return true
    },
    async close() {
      await producer.close()
    },
  }
}
