// Large payloads at the gateway (docs/payloads.md, docs/protocol.md "Large payloads"):
//   POST /blobs        authenticated upload (Authorization: Bearer <the socket's JWT>), streamed into the blob
//                      store through an upload spool (upload-spool.ts: 1 MiB in memory, the rest on disk while the
//                      store is behind), answered with a reference signed for the uploader, which a command frame
//                      then carries as `payloadRef`;
//   GET  /blobs/<key>  a short-lived download link (HMAC-signed, expiring) for results and events by reference.
// Memory stays bounded: at most MEMORY_BYTES of a request wait for the store in memory, and a download is
// written as the store's stream gives it, waiting on uWS's onWritable when the socket is behind.
import type { HttpResponse } from 'uWebSockets.js'

import { PAYLOAD_CONTENT_TYPE, newBlobKey } from '../blobs/claim-check.ts'
import { channels as coreChannels, publish } from '../core/diagnostics.ts'
import { WeirError, isWeirError } from '../core/errors.ts'
import { equal, mac, signRef } from './blob-links.ts'
import type { GatewayContext } from './context.ts'
import { createUploadSpool } from './upload-spool.ts'

/** Most bytes of one upload that wait in memory for the store (the rest waits in the spool file). */
const MEMORY_BYTES = 1024 * 1024

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
    let received = 0
    const started = performance.now()
    // The body waits for the store in the spool: at most MEMORY_BYTES in memory, the rest in a spool file. The
    // request is also paused while the spool spills (where uWS honours pause(), the client is held back instead).
    const spool = createUploadSpool({
      memoryBytes: MEMORY_BYTES,
      dir: blobs.spoolDir,
      onSpilling: (spilling) => {
        if (aborted) return
        if (spilling) res.pause()
        else res.resume()
      },
    })
    res.onAborted(() => {
      aborted = true
      spool.fail(new WeirError('WEIR_ERR_CLOSED', 'the upload was aborted by the client'))
    })
    if (Number.isFinite(declared) && declared > blobs.maxUploadBytes) {
      return fail(res, '413 Payload Too Large', new WeirError('WEIR_ERR_BLOB_TOO_LARGE', `upload of ${declared} bytes is over the limit of ${blobs.maxUploadBytes}`, { details: { maxBytes: blobs.maxUploadBytes } }))
    }
    res.onData((chunk, isLast) => {
      received += chunk.byteLength
      spool.push(chunk, isLast)
    })
    const token = /^Bearer\s+(.+)$/i.exec(authorization)?.[1]
    let subject: string | undefined
    const report = (outcome: 'stored' | 'refused' | 'failed', code?: string) =>
      publish(coreChannels.gatewayUpload, { instanceId: ctx.instanceId, ...(subject === undefined ? {} : { subject }), outcome, size: received, maxWaitingBytes: spool.maxMemoryBytes, spilledBytes: spool.spilledBytes, ...(code === undefined ? {} : { code }), durationMs: performance.now() - started })
    void (async () => {
      try {
        if (token === undefined) throw new WeirError('WEIR_ERR_UNAUTHENTICATED', 'POST /blobs needs Authorization: Bearer <token>')
        const identity = await ctx.verifier.verify(token)
        subject = identity.subject
        const key = newBlobKey()
        const put = await blobs.store.put(key, spool.body(), { contentType, maxBytes: blobs.maxUploadBytes })
        const ref = signRef(blobs, identity.subject, { store: blobs.store.name, key, size: put.size, sha256: put.sha256, contentType })
        report('stored')
        if (!aborted) res.cork(() => res.writeStatus('201 Created').writeHeader('content-type', 'application/json').end(JSON.stringify({ payloadRef: ref })))
      } catch (error) {
        spool.fail(error as Error)
        const weir = isWeirError(error) ? error : new WeirError('WEIR_ERR_BLOB_STORE', (error as Error).message, { cause: error })
        report(weir.code === 'WEIR_ERR_BLOB_STORE' ? 'failed' : 'refused', weir.code)
        if (aborted) return
        const status =
          weir.code === 'WEIR_ERR_UNAUTHENTICATED' || weir.code === 'WEIR_ERR_TOKEN_EXPIRED' ? '401 Unauthorized' : weir.code === 'WEIR_ERR_BLOB_TOO_LARGE' ? '413 Payload Too Large' : '503 Service Unavailable'
        if (weir.code === 'WEIR_ERR_BLOB_STORE') ctx.reportError(error, 'blob upload')
        fail(res, status, weir)
      } finally {
        spool.close()
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
