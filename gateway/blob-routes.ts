// Large payloads at the gateway (docs/payloads.md, docs/protocol.md "Large payloads"):
//   POST /blobs        authenticated upload (Authorization: Bearer <the socket's JWT>), streamed into the blob
//                      store with backpressure (the request is paused while the store is behind), answered with a
//                      reference signed for the uploader, which a command frame then carries as `payloadRef`;
//   GET  /blobs/<key>  a short-lived download link (HMAC-signed, expiring) for results and events by reference.
// Memory stays bounded: at most HIGH_WATER bytes of a request wait for the store, and a download is written
// as the store's stream gives it, waiting on uWS's onWritable when the socket is behind.
import type { HttpResponse } from 'uWebSockets.js'

import { PAYLOAD_CONTENT_TYPE, newBlobKey } from '../blobs/claim-check.ts'
import { channels as coreChannels, publish } from '../core/diagnostics.ts'
import { WeirError, isWeirError } from '../core/errors.ts'
import { equal, mac, signRef } from './blob-links.ts'
import type { GatewayContext } from './context.ts'

const HIGH_WATER = 1024 * 1024
const LOW_WATER = 256 * 1024

function fail(res: HttpResponse, status: string, error: WeirError): void {
  res.cork(() => res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('connection', 'close').end(JSON.stringify({ error: error.toJSON() })))
}

export function registerBlobRoutes(ctx: GatewayContext): void {
  const blobs = ctx.config.blobs
  if (blobs === undefined) return
  const { app } = ctx

  app.post('/blobs', (res, req) => {
    const authorization = req.getHeader('authorization')
    const declared = Number(req.getHeader('content-length') || 'NaN')
    const contentType = req.getHeader('content-type') || PAYLOAD_CONTENT_TYPE
    let aborted = false
    // The body as an async iterable fed by onData: chunks are copied (uWS reuses the buffer), the request is
    // paused above HIGH_WATER bytes waiting and resumed below LOW_WATER.
    const queue: Buffer[] = []
    let queued = 0
    let ended = false
    let paused = false
    let maxWaiting = 0
    let received = 0
    const started = performance.now()
    let failure: Error | undefined
    let wake: (() => void) | undefined
    const notify = () => {
      const w = wake
      wake = undefined
      w?.()
    }
    res.onAborted(() => {
      aborted = true
      failure = new WeirError('WEIR_ERR_CLOSED', 'the upload was aborted by the client')
      notify()
    })
    if (Number.isFinite(declared) && declared > blobs.maxUploadBytes) {
      return fail(res, '413 Payload Too Large', new WeirError('WEIR_ERR_BLOB_TOO_LARGE', `upload of ${declared} bytes is over the limit of ${blobs.maxUploadBytes}`, { details: { maxBytes: blobs.maxUploadBytes } }))
    }
    res.onData((chunk, isLast) => {
      queue.push(Buffer.from(chunk.slice(0)))
      queued += chunk.byteLength
      received += chunk.byteLength
      if (queued > maxWaiting) maxWaiting = queued
      if (isLast) ended = true
      if (queued > HIGH_WATER && !paused && !ended) {
        paused = true
        res.pause()
      }
      notify()
    })
    async function* body(): AsyncIterable<Uint8Array> {
      for (;;) {
        if (failure !== undefined) throw failure
        const chunk = queue.shift()
        if (chunk !== undefined) {
          queued -= chunk.byteLength
          if (paused && queued < LOW_WATER && !aborted) {
            paused = false
            res.resume()
          }
          yield chunk
          continue
        }
        if (ended) return
        await new Promise<void>((resolveWake) => (wake = resolveWake))
      }
    }
    const token = /^Bearer\s+(.+)$/i.exec(authorization)?.[1]
    let subject: string | undefined
    const report = (outcome: 'stored' | 'refused' | 'failed', code?: string) =>
      publish(coreChannels.gatewayUpload, { instanceId: ctx.instanceId, ...(subject === undefined ? {} : { subject }), outcome, size: received, maxWaitingBytes: maxWaiting, ...(code === undefined ? {} : { code }), durationMs: performance.now() - started })
    void (async () => {
      try {
        if (token === undefined) throw new WeirError('WEIR_ERR_UNAUTHENTICATED', 'POST /blobs needs Authorization: Bearer <token>')
        const identity = await ctx.verifier.verify(token)
        subject = identity.subject
        const key = newBlobKey()
        const put = await blobs.store.put(key, body(), { contentType, maxBytes: blobs.maxUploadBytes })
        const ref = signRef(blobs, identity.subject, { store: blobs.store.name, key, size: put.size, sha256: put.sha256, contentType })
        report('stored')
        if (!aborted) res.cork(() => res.writeStatus('201 Created').writeHeader('content-type', 'application/json').end(JSON.stringify({ payloadRef: ref })))
      } catch (error) {
        failure ??= error as Error
        const weir = isWeirError(error) ? error : new WeirError('WEIR_ERR_BLOB_STORE', (error as Error).message, { cause: error })
        report(weir.code === 'WEIR_ERR_BLOB_STORE' ? 'failed' : 'refused', weir.code)
        if (aborted) return
        const status =
          weir.code === 'WEIR_ERR_UNAUTHENTICATED' || weir.code === 'WEIR_ERR_TOKEN_EXPIRED' ? '401 Unauthorized' : weir.code === 'WEIR_ERR_BLOB_TOO_LARGE' ? '413 Payload Too Large' : '503 Service Unavailable'
        if (weir.code === 'WEIR_ERR_BLOB_STORE') ctx.reportError(error, 'blob upload')
        if (paused) res.resume()
        fail(res, status, weir)
      }
    })()
  })

  app.get('/blobs/*', (res, req) => {
    const key = req.getUrl().slice('/blobs/'.length)
    const query = new URLSearchParams(req.getQuery() ?? '')
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    const store = query.get('store') ?? ''
    const exp = Number(query.get('exp'))
    const sig = query.get('sig') ?? ''
    if (store !== blobs.store.name || !Number.isFinite(exp) || exp < Date.now() || !equal(sig, mac(blobs.secret, `link\n${store}\n${key}\n${exp}`))) {
      return fail(res, '403 Forbidden', new WeirError('WEIR_ERR_FORBIDDEN', 'the download link is invalid or expired'))
    }
    void (async () => {
      try {
        const stream = await blobs.store.read(key)
        if (aborted) return void stream.destroy()
        res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'application/octet-stream'))
        for await (const chunk of stream) {
          if (aborted) break
          let ok = false
          res.cork(() => {
            ok = res.write(chunk as Buffer)
          })
          // The socket is behind: wait until uWS drained it before reading more from the store.
          if (!ok) await new Promise<void>((resolveWritable) => res.onWritable(() => (resolveWritable(), true)))
        }
        if (aborted) return void stream.destroy()
        res.cork(() => res.end())
      } catch (error) {
        if (aborted) return
        const weir = isWeirError(error) ? error : new WeirError('WEIR_ERR_BLOB_STORE', (error as Error).message, { cause: error })
        fail(res, weir.code === 'WEIR_ERR_BLOB_MISSING' ? '404 Not Found' : '503 Service Unavailable', weir)
      }
    })()
  })
}
