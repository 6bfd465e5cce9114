// Frames out: to one socket (corked), or published to a uWS topic once per encoding its subscribers use.
import type { TemplatedApp } from 'uWebSockets.js'

import type { Encoding, ResultFrame, ServerFrame, TimeoutFrame } from './protocol.ts'
import { encodeFrame } from './protocol.ts'
import type { Socket, SocketState } from './socket-state.ts'

const MSGPACK_SUFFIX = '#msgpack'
/** uWS topic every socket joins: gateway-wide notices (live-stream gaps). */
export const ALL_TOPIC = 'gateway/all'
/** uWS topic of sockets whose results are live: they get `checkpoint` frames. */
export const CHECKPOINT_TOPIC = 'gateway/checkpoint'

export const sessionTopic = (sessionId: string) => `session/${sessionId}`
export const broadcastTopic = (alias: string) => `socket/${alias}/broadcast`
export const withEncoding = (topic: string, encoding: Encoding) => (encoding === 'json' ? topic : `${topic}${MSGPACK_SUFFIX}`)

export function send(ws: Socket, s: SocketState, frame: ServerFrame): void {
  if (s.closed) return
  const data = encodeFrame(frame, s.encoding)
  // Corked: sends from async continuations (acks, replays) go out in one syscall per tick, not one each.
  ws.cork(() => ws.send(data, s.encoding === 'msgpack'))
}

export function sendResult(ws: Socket, s: SocketState, frame: ResultFrame | TimeoutFrame): void {
  send(ws, s, s.sealer === undefined ? frame : s.sealer.seal(frame))
}

/** Publishes to JSON and msgpack subscribers of a uWS topic; encodes only for formats someone listens to. */
export function publishFrame(app: TemplatedApp, topic: string, frame: ServerFrame): boolean {
  let published = false
  if (app.numSubscribers(topic) > 0) {
    app.publish(topic, encodeFrame(frame, 'json'), false)
    published = true
  }
  const binary = topic + MSGPACK_SUFFIX
  if (app.numSubscribers(binary) > 0) {
    app.publish(binary, encodeFrame(frame, 'msgpack'), true)
    published = true
  }
  return published
}
