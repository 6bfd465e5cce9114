// The bare uWebSockets.js server of the load test's ceiling, in its own process like the gateway (forked by
// bench/gateway/load.ts): every socket subscribes to one topic on open; on request it publishes a given frame
// `count` times, yielding to the event loop every 100 frames as the gateway does between fetches.
import uWS from 'uWebSockets.js'

export type BareUwsRequest = { readonly type: 'publish'; readonly frame: string; readonly count: number }
export type BareUwsMessage = { readonly type: 'listening'; readonly port: number } | { readonly type: 'published' }

if (process.send === undefined) {
  process.stderr.write('bench/gateway/bare-uws-process.ts runs as a child of bench/gateway/load.ts\n')
  process.exit(2)
}
const report = (message: BareUwsMessage) => process.send?.(message)

const app = uWS.App()
app.ws('/ws', { maxBackpressure: 16 * 1024 * 1024, open: (ws) => void ws.subscribe('b') })
app.listen('127.0.0.1', 0, (socket) => {
  if (socket === false) process.exit(1)
  report({ type: 'listening', port: uWS.us_socket_local_port(socket) })
})
process.on('message', (request: BareUwsRequest) => {
  void (async () => {
    for (let i = 0; i < request.count; i++) {
      app.publish('b', request.frame)
      if (i % 100 === 99) await new Promise((r) => setImmediate(r))
    }
    report({ type: 'published' })
  })()
})
process.once('SIGTERM', () => {
  app.close()
  process.exit(0)
})
