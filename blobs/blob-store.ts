// The blob store contract: where payloads too large for a Kafka record live (the claim check, docs/payloads.md).
// Two implementations: the local file system (one machine, the demo) and S3-compatible object storage; one
// conformance suite (test/blobs/blob-store-conformance.ts) runs against both.
import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'

import { WeirError } from '../core/errors.ts'

/** A body to store: bytes, or a stream of chunks (read once, with backpressure). */
export type BlobBody = Uint8Array | AsyncIterable<Uint8Array>

export interface PutOptions {
  /** Stored with the blob (default application/octet-stream). */
  contentType?: string
  /** Refuse (WEIR_ERR_BLOB_TOO_LARGE) and store nothing once the body passes this many bytes. */
  maxBytes?: number
}

/** What a put stored: the size and the SHA-256 (hex) of the bytes, computed while they streamed by. */
export interface PutResult {
  readonly size: number
  readonly sha256: string
}

export interface BlobEntry {
  readonly key: string
  readonly size: number
  /** When the blob was written, ms since the epoch. */
  readonly lastModified: number
}

export interface BlobStore {
  /** The store's name, written into every reference to its blobs (a reader refuses a name it does not have). */
  readonly name: string
  put(key: string, body: BlobBody, options?: PutOptions): Promise<PutResult>
  /** The whole blob; WEIR_ERR_BLOB_MISSING when it is not there. */
  get(key: string): Promise<Buffer>
  /** The blob as a stream (downloads); WEIR_ERR_BLOB_MISSING when it is not there. */
  read(key: string): Promise<Readable>
  /** Removes the blob; a missing one is not an error. */
  delete(key: string): Promise<void>
  /** Every blob whose key starts with `prefix`, in no particular order. */
  list(prefix?: string): AsyncIterable<BlobEntry>
  close(): Promise<void>
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/

/** Keys are relative paths of safe segments (no `..`, no leading slash), the same in every store. */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512 || !KEY.test(key) || key.split('/').some((s) => s === '..' || s === '.')) {
    throw new WeirError('WEIR_ERR_INVALID_ARGUMENT', `invalid blob key ${JSON.stringify(key)}: segments of letters, digits, '.', '_' and '-', separated by '/'`)
  }
}

export function blobMissing(store: string, key: string, cause?: unknown): WeirError {
  return new WeirError('WEIR_ERR_BLOB_MISSING', `blob ${key} is not in store ${store}`, { details: { store, key }, ...(cause === undefined ? {} : { cause }) })
}

export function blobStoreFailed(store: string, operation: string, key: string, cause: unknown): WeirError {
  const message = cause instanceof Error ? cause.message : String(cause)
  return new WeirError('WEIR_ERR_BLOB_STORE', `blob store ${store}: ${operation} ${key} failed: ${message}`, { cause, details: { store, operation, key } })
}

/**
 * The chunks of `body`, hashed and counted as they pass; `result()` is the size and hash once they all passed.
 * Over `maxBytes` it throws WEIR_ERR_BLOB_TOO_LARGE before yielding the chunk that crossed the limit.
 */
export function hashing(body: BlobBody, maxBytes = Number.MAX_SAFE_INTEGER): { chunks: AsyncIterable<Uint8Array>; result(): PutResult } {
  const hash = createHash('sha256')
  let size = 0
  let digest: string | undefined
  async function* chunks(): AsyncIterable<Uint8Array> {
    const source: AsyncIterable<Uint8Array> = body instanceof Uint8Array ? single(body) : body
    for await (const chunk of source) {
      size += chunk.byteLength
      if (size > maxBytes) throw new WeirError('WEIR_ERR_BLOB_TOO_LARGE', `payload is over the limit of ${maxBytes} bytes`, { details: { maxBytes } })
      hash.update(chunk)
      yield chunk
    }
    digest = hash.digest('hex')
  }
  return {
    chunks: chunks(),
    result() {
      if (digest === undefined) throw new WeirError('WEIR_ERR_BLOB_STORE', 'the body was not read to its end')
      return { size, sha256: digest }
    },
  }
}

async function* single(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}
