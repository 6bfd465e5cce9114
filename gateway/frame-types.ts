// The one list of frame types (docs/protocol.md, "Frames"). The frame unions (protocol.ts), the parsers' and
// handlers' tables and the "valid types" error message all derive from these arrays, so a type added here and
// not handled somewhere fails to compile, and test/gateway/protocol-doc.test.ts fails until the doc has its row.
// Browser-safe: the client SDK imports it through protocol.ts.

/** Frames a client sends. */
export const CLIENT_FRAME_TYPES = ['command', 'subscribe', 'unsubscribe', 'resume', 'auth'] as const

/** Frames the gateway sends. */
export const SERVER_FRAME_TYPES = [
  'welcome',
  'ack',
  'result',
  'timeout',
  'event',
  'error',
  'gap',
  'subscribed',
  'unsubscribed',
  'resumed',
  'checkpoint',
  'authenticated',
] as const

export type ClientFrameType = (typeof CLIENT_FRAME_TYPES)[number]
export type ServerFrameType = (typeof SERVER_FRAME_TYPES)[number]

const clientTypes: ReadonlySet<string> = new Set(CLIENT_FRAME_TYPES)
const serverTypes: ReadonlySet<string> = new Set(SERVER_FRAME_TYPES)

export function isClientFrameType(value: unknown): value is ClientFrameType {
  return typeof value === 'string' && clientTypes.has(value)
}

export function isServerFrameType(value: unknown): value is ServerFrameType {
  return typeof value === 'string' && serverTypes.has(value)
}
