// The gateway's HTTP routes besides the socket path: health, readiness, Prometheus metrics, 404 for the rest.
import type { GatewayContext } from './context.ts'

export function registerHttpRoutes(ctx: GatewayContext): void {
  const { app, config, metrics } = ctx

  app.get('/health', (res) => {
    const ok = ctx.state === 'running' || ctx.state === 'draining' || ctx.state === 'starting'
    res.writeStatus(ok ? '200 OK' : '503 Service Unavailable').writeHeader('content-type', 'application/json').end(JSON.stringify({ status: ctx.state }))
  })
  app.get('/ready', (res) => {
    const live = ctx.live
    const fresh = live !== undefined && Date.now() - live.lastFetchAt() < Math.max(10_000, config.fetchMaxWaitMs * 10)
    const ready = ctx.state === 'running' && fresh
    res
      .writeStatus(ready ? '200 OK' : '503 Service Unavailable')
      .writeHeader('content-type', 'application/json')
      .end(JSON.stringify({ ready, state: ctx.state, connections: ctx.sockets.all.size, liveStreamFresh: fresh }))
  })
  app.get('/metrics', (res) => {
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    metrics.registry.metrics().then(
      (text) => {
        if (aborted) return
        res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', metrics.registry.contentType).end(text))
      },
      (error: unknown) => {
        ctx.reportError(error, 'metrics')
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end())
      },
    )
  })
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end()
  })
}
