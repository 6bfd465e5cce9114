// The gateway's blob options, the signatures of upload references and the short-lived download links
// (HMAC-SHA-256 with the gateway's blob secret); the routes that use them are blob-routes.ts.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { tmpdir } from 'node:os'

import type { BlobStore } from '../blobs/blob-store.ts'
import { WeirError, invalidOptions } from '../core/errors.ts'
import type { BlobRef } from '../envelope/envelope.ts'

export interface GatewayBlobOptions {
  /** Where uploads go (the workers' claim check must read the same store, by name). */
  store: BlobStore
  /** Signs references and download links; gateways behind one load balancer share it (default: random per process). */
  secret?: Uint8Array
  /** Largest upload, bytes (default 100 MiB). */
  maxUploadBytes?: number
  /** How long a download link works, ms (default 60 s). */
  linkTtlMs?: number
  /** Where an upload's body waits on disk while the store is behind (default: the OS temp folder; docs/payloads.md). */
  spoolDir?: string
}

export interface ResolvedBlobOptions {
  readonly store: BlobStore
  readonly secret: Uint8Array
  readonly maxUploadBytes: number
  readonly linkTtlMs: number
  readonly spoolDir: string
}

/** A reference the gateway handed out for an upload: the command frame carries it back, signature included. */
export interface SignedBlobRef extends BlobRef {
  readonly sig: string
}

export const DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024

export function resolveBlobOptions(options: GatewayBlobOptions | undefined): ResolvedBlobOptions | undefined {
  if (options === undefined) return undefined
  const violations: string[] = []
  if (options.store === undefined) violations.push('blobs.store is required')
  const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES
  const linkTtlMs = options.linkTtlMs ?? 60_000
  if (!Number.isInteger(maxUploadBytes) || maxUploadBytes < 1) violations.push('blobs.maxUploadBytes must be a positive integer')
  if (!Number.isInteger(linkTtlMs) || linkTtlMs < 1000) violations.push('blobs.linkTtlMs must be an integer >= 1000')
  if (options.secret !== undefined && options.secret.byteLength < 32) violations.push('blobs.secret must have at least 32 bytes')
  if (options.spoolDir !== undefined && (typeof options.spoolDir !== 'string' || options.spoolDir.length === 0)) violations.push('blobs.spoolDir must be a folder path')
  if (violations.length > 0) throw invalidOptions('Gateway', violations)
  return Object.freeze({ store: options.store, secret: options.secret ?? randomBytes(32), maxUploadBytes, linkTtlMs, spoolDir: options.spoolDir ?? tmpdir() })
}

export const mac = (secret: Uint8Array, text: string) => createHmac('sha256', secret).update(text).digest('base64url')
const refText = (subject: string, ref: BlobRef) => `ref\n${subject}\n${ref.store}\n${ref.key}\n${ref.size}\n${ref.sha256}\n${ref.contentType}`
export const equal = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

export function signRef(blobs: ResolvedBlobOptions, subject: string, ref: BlobRef): SignedBlobRef {
  return { ...ref, sig: mac(blobs.secret, refText(subject, ref)) }
}

/** The reference of a command frame, without its signature, when this gateway signed it for `subject`. */
export function verifyRef(blobs: ResolvedBlobOptions | undefined, subject: string, value: unknown): BlobRef {
  const v = value as Partial<SignedBlobRef> | null
  const fields = v !== null && typeof v === 'object' && typeof v.store === 'string' && typeof v.key === 'string' && Number.isSafeInteger(v.size) && typeof v.sha256 === 'string' && typeof v.contentType === 'string' && typeof v.sig === 'string'
  if (blobs === undefined || !fields) throw new WeirError('WEIR_ERR_BLOB_FOREIGN', blobs === undefined ? 'this gateway takes no payload references (no blob store)' : 'payloadRef must be the reference POST /blobs returned')
  const ref: BlobRef = { store: v.store!, key: v.key!, size: v.size!, sha256: v.sha256!, contentType: v.contentType! }
  if (ref.store !== blobs.store.name || !equal(v.sig!, mac(blobs.secret, refText(subject, ref)))) {
    throw new WeirError('WEIR_ERR_BLOB_FOREIGN', 'payloadRef was not issued by this gateway for this subject')
  }
  return ref
}

/** A download link (path and query) for a referenced blob, valid for linkTtlMs. */
export function blobLink(blobs: ResolvedBlobOptions, ref: BlobRef, now = Date.now()): string {
  const exp = now + blobs.linkTtlMs
  return `/blobs/${ref.key}?store=${encodeURIComponent(ref.store)}&exp=${exp}&sig=${mac(blobs.secret, `link\n${ref.store}\n${ref.key}\n${exp}`)}`
}

