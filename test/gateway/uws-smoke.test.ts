// uWebSockets.js must load under the Node the tests run on (on Debian 12 that needs the private Node with
// Debian 13's C runtime, see scripts/lib/node.sh) and serve a request on an OS-assigned port.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import uWS from 'uWebSockets.js'

test('uWebSockets.js loads and serves one HTTP request on port 0', async (t) => {
  const app = uWS.App()
  app.get('/health', (res) => {
    res.writeHeader('content-type', 'text/plain').end('ok')
  })
  const port = await new Promise<number>((resolve, reject) => {
    app.listen('127.0.0.1', 0, (socket) => (socket ? resolve(uWS.us_socket_local_port(socket)) : reject(new Error('listen failed'))))
  })
  t.after(() => app.close())
  assert.ok(port > 0)
  const response = await fetch(`http://127.0.0.1:${port}/health`)
  assert.equal(response.status, 200)
  assert.equal(await response.text(), 'ok')
})
