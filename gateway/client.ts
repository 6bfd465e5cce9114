// The gateway's client SDK (`weir/client`), for browsers and Node (global WebSocket; Node >= 22). No node: imports.
//
//   const client = await connect({ url: 'wss://host/ws', token: () => auth.currentToken() })
//   const result = await client.send('orders/sales/place', { orderId: 'o-1', qty: 2 }, { ttlMs: 5000 })
//   const stop = client.subscribe('orders', (event) => render(event.payload))
//
// It reconnects by itself (exponential backoff with jitter) and resumes: it keeps, per topic partition, the
// next offset it wants, sends them on every reconnect, and drops any frame below them (no duplicates even
// when a frame arrives twice). A command not acked before a disconnect is sent again with the same
// requestId, which the gateway turns into the same envelope id, so the worker runs it once.
//
// Its parts live in client/: connect.ts composes them; connection.ts (the socket, reconnects), token.ts,
// cursors.ts (offsets per partition), requests.ts (commands in flight), subscriptions.ts, receiver.ts (server
// frames), sealing.ts (encrypted results), callbacks.ts, options.ts (the public types).
export { connect } from './client/connect.ts'
export type {
  ClientState,
  GatewayClient,
  GatewayClientOptions,
  ReconnectOptions,
  SendOptions,
  SubscribeOptions,
  TokenSource,
} from './client/options.ts'
export type { WireErrorCode } from './errors.ts'
export type { AckFrame, EventFrame, FrameOffset, GapFrame, ResultFrame, TimeoutFrame } from './protocol.ts'
