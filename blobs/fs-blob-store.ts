// Blobs as files under one folder: the embedded default for one machine and the demo. A put writes a temporary
// file and renames it into place, so a reader never sees half a blob and a crashed put leaves only a `.partial-`
// file (removed by the next put's folder or by the collector's sweep of old partials).
import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

import { invalidOptions, isWeirError } from '../core/errors.ts'
import { blobMissing, blobStoreFailed, checkKey, hashing } from './blob-store.ts'
import type { BlobBody, BlobEntry, BlobStore, PutOptions, PutResult } from './blob-store.ts'

export interface FsBlobStoreOptions {
  /** The folder that holds the blobs (created when missing). */
  root: string
  /** Written into references (default `fs`). */
  name?: string
}

const PARTIAL = '.partial-'

export function createFsBlobStore(options: FsBlobStoreOptions): BlobStore {
  if (typeof options?.root !== 'string' || options.root.length === 0) throw invalidOptions('createFsBlobStore', ['root must be a folder path'])
  const root = options.root
  const name = options.name ?? 'fs'
  const pathOf = (key: string) => {
    checkKey(key)
    return join(root, ...key.split('/'))
  }
  const missingOr = (key: string, operation: string, error: unknown) =>
    (error as NodeJS.ErrnoException).code === 'ENOENT' ? blobMissing(name, key, error) : blobStoreFailed(name, operation, key, error)

  return Object.freeze({
    name,
    async put(key: string, body: BlobBody, putOptions: PutOptions = {}): Promise<PutResult> {
      const path = pathOf(key)
      const partial = join(dirname(path), `${PARTIAL}${randomBytes(6).toString('hex')}`)
      const hashed = hashing(body, putOptions.maxBytes)
      try {
        await mkdir(dirname(path), { recursive: true })
        await pipeline(hashed.chunks, createWriteStream(partial))
        await rename(partial, path)
        return hashed.result()
      } catch (error) {
        await rm(partial, { force: true }).catch(() => {})
        if (isWeirError(error)) throw error
        throw blobStoreFailed(name, 'put', key, error)
      }
    },
    async get(key: string): Promise<Buffer> {
      try {
        return await readFile(pathOf(key))
      } catch (error) {
        if (isWeirError(error)) throw error
        throw missingOr(key, 'get', error)
      }
    },
    async read(key: string): Promise<Readable> {
      const path = pathOf(key)
      try {
        await stat(path)
      } catch (error) {
        throw missingOr(key, 'read', error)
      }
      return createReadStream(path, { highWaterMark: 256 * 1024 })
    },
    async delete(key: string): Promise<void> {
      await rm(pathOf(key), { force: true }).catch((error: unknown) => {
        throw blobStoreFailed(name, 'delete', key, error)
      })
    },
    async *list(prefix = ''): AsyncIterable<BlobEntry> {
      let names: string[]
      try {
        names = (await readdir(root, { recursive: true })) as string[]
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
        throw blobStoreFailed(name, 'list', prefix, error)
      }
      for (const entry of names) {
        const key = relative(root, join(root, entry)).split(sep).join('/')
        if (!key.startsWith(prefix) || key.split('/').pop()!.startsWith(PARTIAL)) continue
        const info = await stat(join(root, entry)).catch(() => undefined)
        if (info === undefined || !info.isFile()) continue
        yield { key, size: info.size, lastModified: info.mtimeMs }
      }
    },
    async close() {},
  })
}
