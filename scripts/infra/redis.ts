// Provides Redis: REDIS_URL when set, else the local server on 127.0.0.1:6379, started when it is down.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'

import { InfraUnavailable, type Progress } from './progress.ts'

export interface RedisServer {
  readonly url: string
  readonly kind: 'external' | 'local' | 'started'
}

const LOCAL_URL = 'redis://127.0.0.1:6379'

export async function provideRedis(progress: Progress): Promise<RedisServer> {
  const configured = process.env.REDIS_URL?.trim()
  if (configured) {
    if (!(await ping(configured))) throw new InfraUnavailable(`REDIS_URL=${configured} does not answer PING`)
    progress.step(`Redis: using REDIS_URL=${configured}`)
    return { url: configured, kind: 'external' }
  }
  if (await ping(LOCAL_URL)) {
    progress.step(`Redis: using the local server at ${LOCAL_URL}`)
    return { url: LOCAL_URL, kind: 'local' }
  }
  progress.step('Redis: nothing answers on 127.0.0.1:6379: starting redis-server (no persistence)')
  await startRedisServer()
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (await ping(LOCAL_URL)) return { url: LOCAL_URL, kind: 'started' }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new InfraUnavailable('redis-server was started but does not answer PING on 127.0.0.1:6379 within 15 s')
}

function startRedisServer(): Promise<void> {
  return new Promise((resolveStart, reject) => {
    const child = spawn('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    })
    child.on('error', () =>
      reject(new InfraUnavailable('Redis is not running and `redis-server` is not installed: install it (apt-get install redis-server) or set REDIS_URL')),
    )
    child.on('exit', (code) => (code === 0 ? resolveStart() : reject(new InfraUnavailable(`redis-server exited with code ${code}`))))
  })
}

/** A raw RESP PING, so this check needs no client library. */
export function ping(url: string, timeoutMs = 2000): Promise<boolean> {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return Promise.resolve(false)
  }
  return new Promise((resolvePing) => {
    const socket = connect({ host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 6379) })
    const finish = (ok: boolean) => {
      socket.destroy()
      resolvePing(ok)
    }
    socket.setTimeout(timeoutMs, () => finish(false))
    socket.on('error', () => finish(false))
    socket.on('connect', () => {
      const auth = parsed.password ? `AUTH ${decodeURIComponent(parsed.username || 'default')} ${decodeURIComponent(parsed.password)}\r\n` : ''
      socket.write(`${auth}PING\r\n`)
    })
    let reply = ''
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (reply.includes('+PONG')) finish(true)
      else if (reply.includes('-')) finish(false)
    })
  })
}
