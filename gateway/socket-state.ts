// What the gateway keeps per socket (uWS user data), and the sets of open sockets the parts share.
import type { WebSocket } from 'uWebSockets.js'

import type { TopicPartitionOffset } from '../kafka/index.ts'
import type { Encoding } from './protocol.ts'
import type { TokenBucket } from './rate-limit.ts'
import type { Sealer } from './sealing.ts'

export interface EventStream {
  state: 'catching-up' | 'live'
}

export interface SocketState {
  readonly connectionId: number
  subject: string
  roles: readonly string[]
  /** The verified token's claims (event stream rules read them). */
  claims: Readonly<Record<string, unknown>>
  expiresAt: number | undefined
  readonly sessionId: string
  readonly sessionNonce: string
  readonly encoding: Encoding
  readonly bucket: TokenBucket
  closed: boolean
  results: 'idle' | 'catching-up' | 'live'
  readonly events: Map<string, EventStream>
  /** Events-topic offsets from a resume frame, used by later subscribes. */
  readonly resumeOffsets: Map<string, TopicPartitionOffset>
  drainWaiters: Array<() => void>
  closeReason: string | undefined
  /** Set when the client registered a public key: its results are sealed for this socket alone. */
  readonly sealer: Sealer | undefined
  /** How the upgrade completed: inside uWS's upgrade handler, or after an asynchronous token check. */
  readonly upgrade: 'sync' | 'async'
}

export type Socket = WebSocket<SocketState>

export interface SocketRegistry {
  readonly all: Set<Socket>
  /** Open sockets per session: the sockets an event caused by the session's own command goes to in full. */
  readonly bySession: Map<string, Set<Socket>>
  /** Live sockets with sealed results, per session: they get their own encrypted copy (no pub/sub). */
  readonly sealed: Map<string, Set<Socket>>
}

export function createSocketRegistry(): SocketRegistry {
  return { all: new Set(), bySession: new Map(), sealed: new Map() }
}

export function addToSession(sets: Map<string, Set<Socket>>, sessionId: string, ws: Socket): void {
  const set = sets.get(sessionId) ?? new Set()
  set.add(ws)
  sets.set(sessionId, set)
}

export function removeFromSession(sets: Map<string, Set<Socket>>, sessionId: string, ws: Socket): void {
  const set = sets.get(sessionId)
  if (set?.delete(ws) && set.size === 0) sets.delete(sessionId)
}
