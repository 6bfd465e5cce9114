// The input records of bench:partition, unit by unit (one unit = one expected output), from a plain-data spec, so
// the bench process (cold preload) and the feeder process (steady state) make the same records.
import { encodeEnvelope } from '../envelope/codec.ts'
import { createEnvelope } from '../envelope/envelope.ts'
import type { OutgoingRecord } from '../kafka/index.ts'

export type InputSpec =
  | { readonly topology: 'counting'; readonly input: string; readonly keys: number; readonly payloadBytes: number }
  /** An orders/orders/place command and its deadline registration (what the gateway writes), keyed by order id. */
  | { readonly topology: 'command-service'; readonly commands: string; readonly deadlines: string; readonly keys: number }

export function inputMaker(spec: InputSpec): (i: number) => OutgoingRecord[] {
  if (spec.topology === 'counting') {
    const payload = 'x'.repeat(spec.payloadBytes)
    return (i) => [{ topic: spec.input, key: `key-${i % spec.keys}`, value: JSON.stringify({ seq: i, payload }) }]
  }
  // Made when fed: a command fed during a long run is as fresh as the gateway would write it.
  return (i) => {
    const orderId = `o-${i}`
    const command = createEnvelope({
      kind: 'command',
      topicAlias: 'orders',
      contextPath: 'orders',
      alias: 'place',
      payload: { orderId, sku: `sku-${i % spec.keys}`, qty: 1 },
      clientSessionId: `session-${i % 100}`,
      ttlMs: 10 * 60_000,
    })
    const bytes = encodeEnvelope(command)
    return [
      { topic: spec.commands, key: orderId, value: bytes },
      { topic: spec.deadlines, key: orderId, value: bytes },
    ]
  }
}
