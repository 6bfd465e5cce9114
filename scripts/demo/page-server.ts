// The demo page's server: the page, its configuration, a token endpoint (a demo identity provider), and the
// browser-safe TypeScript of the page and the client SDK with its types stripped on the fly (docs/demo.md).
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { stripTypeScriptTypes } from 'node:module'
import { extname, relative, resolve, sep } from 'node:path'

import { SignJWT } from 'jose'
import type { DemoFaults } from '../../examples/orders/demo-faults.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const PAGE = 'examples/orders/demo/index.html'
/**
 * Folders and files whose TypeScript the page may load (types stripped on the fly): the page's script and the
 * client SDK with what it imports.
 */
const BROWSER_TS_ROOTS = ['examples/orders/demo/', 'gateway/', 'core/', 'kafka/partition-key.ts', 'envelope/never-used.ts']
/** Plain JavaScript the page may load as is: msgpackr's browser ES modules (the SDK's only dependency). */
const BROWSER_JS_ROOTS = ['node_modules/msgpackr/']

/** The page server: `config` is served as /config.json, tokens are signed with `secret` (HS256). */
export function createPageServer(config: unknown, secret: Uint8Array, faults?: DemoFaults): Server {
  return createServer((request, response) => {
    handle(request, response, config, secret, faults).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' })
      response.end(String(error))
    })
  })
}

const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.ts': 'text/javascript; charset=utf-8' }

async function handle(request: IncomingMessage, response: ServerResponse, config: unknown, secret: Uint8Array, faults?: DemoFaults): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://demo')
  // The fault switches (examples/orders/demo-faults.ts) answer their own routes.
  if (await faults?.handle(url, request, response)) return
  if (url.pathname === '/' && request.method === 'GET') return sendFile(response, PAGE)
  if (url.pathname === '/config.json' && request.method === 'GET') return sendJson(response, config)
  if (url.pathname === '/token' && request.method === 'POST') {
    // A demo identity provider: anyone who can load the page gets a 10-minute token for the subject `demo`.
    const now = Math.floor(Date.now() / 1000)
    const token = await new SignJWT({ roles: [] }).setProtectedHeader({ alg: 'HS256' }).setSubject('demo').setIssuedAt(now).setExpirationTime(now + 600).sign(secret)
    return sendJson(response, { token })
  }
  if (request.method === 'GET') {
    const file = resolve(ROOT, `.${decodeURIComponent(url.pathname)}`)
    const path = relative(ROOT, file).split(sep).join('/')
    const ext = extname(path)
    const allowed =
      !path.startsWith('..') &&
      ((ext === '.ts' && BROWSER_TS_ROOTS.some((r) => path.startsWith(r))) || (ext === '.js' && BROWSER_JS_ROOTS.some((r) => path.startsWith(r))))
    if (allowed) return sendFile(response, path)
  }
  response.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
}

async function sendFile(response: ServerResponse, path: string): Promise<void> {
  let body: string
  try {
    body = await readFile(resolve(ROOT, path), 'utf8')
  } catch {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
    return
  }
  // Erasable TypeScript only (the project's rule): stripping types leaves runnable JavaScript, positions kept.
  if (path.endsWith('.ts')) body = stripTypeScriptTypes(body, { mode: 'strip', sourceUrl: `/${path}` })
  response.writeHead(200, { 'content-type': CONTENT_TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body)
}

function sendJson(response: ServerResponse, value: unknown): void {
  response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(value))
}
