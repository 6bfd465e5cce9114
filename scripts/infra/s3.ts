// Provides an S3-compatible server for the blob store's tests, the demo and the chaos command, in this order:
//   1. WEIR_S3_ENDPOINT, when set (with WEIR_S3_ACCESS_KEY_ID, WEIR_S3_SECRET_ACCESS_KEY, WEIR_S3_REGION): used as it is;
//   2. a local S3Proxy (Maven Central, org.gaul:s3proxy) with its filesystem backend in a temp dir, on a free port,
//      health-checked, stopped on exit. Jars are cached under $WEIR_CACHE_DIR like Kafka's (scripts/infra/kafka.ts).
import { execFile, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

import { cacheDir, freePort, stopProcess } from './kafka.ts'
import { InfraUnavailable, type Progress } from './progress.ts'

const run = promisify(execFile)
export const S3PROXY_VERSION = '2.6.0'
const ROOT = resolve(import.meta.dirname, '../..')

export interface S3Server {
  readonly kind: 'external' | 'local'
  /** WEIR_S3_ENDPOINT, WEIR_S3_REGION, WEIR_S3_ACCESS_KEY_ID, WEIR_S3_SECRET_ACCESS_KEY for child processes. */
  readonly env: Record<string, string>
  stop(): Promise<void>
}

export async function provideS3(progress: Progress): Promise<S3Server> {
  const configured = process.env.WEIR_S3_ENDPOINT?.trim()
  if (configured) {
    const env = {
      WEIR_S3_ENDPOINT: configured,
      WEIR_S3_REGION: process.env.WEIR_S3_REGION ?? 'us-east-1',
      WEIR_S3_ACCESS_KEY_ID: process.env.WEIR_S3_ACCESS_KEY_ID ?? '',
      WEIR_S3_SECRET_ACCESS_KEY: process.env.WEIR_S3_SECRET_ACCESS_KEY ?? '',
    }
    progress.step(`S3: using WEIR_S3_ENDPOINT=${configured}`)
    await waitForS3(configured, 15_000, undefined)
    return { kind: 'external', env, stop: async () => {} }
  }
  return startS3Proxy(progress)
}

/** S3Proxy's jars from Maven Central, cached per version. */
async function s3proxyLibs(progress: Progress): Promise<string> {
  const dir = join(cacheDir(), `s3proxy-${S3PROXY_VERSION}`)
  const libs = join(dir, 'libs')
  if (existsSync(join(dir, '.complete'))) return libs
  try {
    await run('mvn', ['-v'], { timeout: 30_000 })
  } catch {
    throw new InfraUnavailable('no S3 server: WEIR_S3_ENDPOINT is not set and `mvn` is missing to fetch S3Proxy. Install Apache Maven (apt-get install maven).')
  }
  progress.step(`S3: fetching S3Proxy ${S3PROXY_VERSION} jars from Maven Central (one time)`)
  await mkdir(dir, { recursive: true })
  const staging = `${libs}.partial-${process.pid}`
  await rm(staging, { recursive: true, force: true })
  try {
    await run('mvn', ['-q', '-B', '-f', join(ROOT, 'scripts/s3proxy/pom.xml'), 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${staging}`], {
      timeout: 15 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    })
  } catch (error) {
    throw new InfraUnavailable(`Maven could not fetch the S3Proxy ${S3PROXY_VERSION} jars: ${(error as { stderr?: string }).stderr ?? String(error)}`)
  }
  if (existsSync(join(dir, '.complete'))) {
    await rm(staging, { recursive: true, force: true })
    return libs
  }
  await rm(libs, { recursive: true, force: true })
  await rename(staging, libs).catch(async (error: unknown) => {
    if (!existsSync(join(dir, '.complete'))) throw error
    await rm(staging, { recursive: true, force: true })
  })
  await writeFile(join(dir, '.complete'), `${(await readdir(libs)).length} jars\n`)
  return libs
}

async function startS3Proxy(progress: Progress): Promise<S3Server> {
  try {
    await run('java', ['-version'], { timeout: 30_000 })
  } catch {
    throw new InfraUnavailable('no S3 server: WEIR_S3_ENDPOINT is not set and `java` is missing for S3Proxy. Install a Java 17+ runtime.')
  }
  const libs = await s3proxyLibs(progress)
  const dir = await mkdtemp(join(tmpdir(), 'weir-s3-'))
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  const identity = 'weir'
  const credential = randomBytes(12).toString('hex')
  await mkdir(join(dir, 'data'))
  await writeFile(
    join(dir, 's3proxy.conf'),
    [
      `s3proxy.endpoint=${endpoint}`,
      's3proxy.authorization=aws-v2-or-v4',
      `s3proxy.identity=${identity}`,
      `s3proxy.credential=${credential}`,
      'jclouds.provider=filesystem',
      `jclouds.filesystem.basedir=${join(dir, 'data')}`,
    ].join('\n'),
  )
  // Without a configuration logback logs every request at DEBUG.
  await writeFile(
    join(dir, 'logback.xml'),
    `<configuration><appender name="F" class="ch.qos.logback.core.FileAppender"><file>${join(dir, 's3proxy.log')}</file><encoder><pattern>%d %p %c %m%n</pattern></encoder></appender><root level="WARN"><appender-ref ref="F"/></root></configuration>\n`,
  )
  progress.step(`S3: starting S3Proxy ${S3PROXY_VERSION} (filesystem backend) on ${endpoint} (data in ${dir})`)
  const java = spawn('java', ['-Xms64m', '-Xmx384m', `-Dlogback.configurationFile=${join(dir, 'logback.xml')}`, '-cp', join(libs, '*'), 'org.gaul.s3proxy.Main', '--properties', join(dir, 's3proxy.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  java.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  const watchdog = spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${java.pid} 2>/dev/null; do sleep 1; done; kill -KILL ${java.pid} 2>/dev/null; exit 0`], {
    stdio: 'ignore',
    detached: true,
  })
  watchdog.unref()
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await stopProcess(java, 10_000)
    watchdog.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true }).catch(() => {})
  }
  try {
    await waitForS3(endpoint, 60_000, java)
  } catch (error) {
    await stop()
    throw new InfraUnavailable(`S3Proxy did not become ready: ${(error as Error).message}\n${stderr}`)
  }
  progress.done(`S3 ready (S3Proxy): ${endpoint}`)
  return {
    kind: 'local',
    env: { WEIR_S3_ENDPOINT: endpoint, WEIR_S3_REGION: 'us-east-1', WEIR_S3_ACCESS_KEY_ID: identity, WEIR_S3_SECRET_ACCESS_KEY: credential },
    stop,
  }
}

/** Ready means: the endpoint answers HTTP (an unsigned request gets S3's 403, which is an answer). */
async function waitForS3(endpoint: string, timeoutMs: number, java: ChildProcess | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    if (java !== undefined && java.exitCode !== null) throw new Error(`S3Proxy exited with code ${java.exitCode}`)
    try {
      const response = await fetch(endpoint, { signal: AbortSignal.timeout(2000) })
      await response.arrayBuffer()
      return
    } catch (error) {
      last = (error as Error).message
    }
    await new Promise((r) => setTimeout(r, 300))
  }
  throw new Error(`no answer from ${endpoint} within ${timeoutMs} ms: ${last}`)
}
