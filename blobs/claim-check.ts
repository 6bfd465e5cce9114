// The claim check: a payload whose msgpack is over the threshold is written to the blob store before the
// transaction that carries its envelope, and the envelope carries a reference instead (docs/payloads.md). A
// reader resolves the reference when it needs the payload, checking the blob's size and SHA-256.
import { randomBytes } from 'node:crypto'

import { WeirError, invalidOptions, isWeirError } from '../core/errors.ts'
import { packValue, unpackValue } from '../envelope/codec.ts'
import type { BlobRef, Envelope } from '../envelope/envelope.ts'
import { sha256Hex } from './blob-store.ts'
import type { BlobStore } from './blob-store.ts'

export const DEFAULT_CLAIM_CHECK_THRESHOLD = 256 * 1024
export const PAYLOAD_CONTENT_TYPE = 'application/msgpack'
/** Every blob weir writes has a key of this form: the orphan collector finds references by it. */
export const BLOB_KEY_PATTERN = /payloads\/[0-9a-f]{32}/g

export function newBlobKey(): string {
  return `payloads/${randomBytes(16).toString('hex')}`
}

export interface ClaimCheckOptions {
  /** Where offloaded payloads are written. */
  store: BlobStore
  /** Further stores references may name (a reader resolves a reference only in a store it has). */
  readers?: readonly BlobStore[]
  /** Payloads whose msgpack is larger than this many bytes go by reference (default 256 KiB). */
  thresholdBytes?: number
}

export interface ClaimCheck {
  readonly thresholdBytes: number
  readonly store: BlobStore
  /** The envelope with its payload by reference when the payload is over the threshold; else the envelope itself. */
  offload<P>(envelope: Envelope<P>): Promise<Envelope<P>>
  /** The envelope with its payload fetched and verified when it carries a reference; else the envelope itself. */
  resolve<P>(envelope: Envelope<P>): Promise<Envelope<P>>
  /** The bytes of a referenced blob, verified against the reference. */
  fetch(ref: BlobRef): Promise<Buffer>
}

export function createClaimCheck(options: ClaimCheckOptions): ClaimCheck {
  const violations: string[] = []
  if (options?.store === undefined) violations.push('store is required')
  const thresholdBytes = options?.thresholdBytes ?? DEFAULT_CLAIM_CHECK_THRESHOLD
  if (!Number.isInteger(thresholdBytes) || thresholdBytes < 1) violations.push(`thresholdBytes must be a positive integer, got ${String(options?.thresholdBytes)}`)
  if (violations.length > 0) throw invalidOptions('createClaimCheck', violations)
  const stores = new Map<string, BlobStore>()
  for (const store of [options.store, ...(options.readers ?? [])]) stores.set(store.name, store)

  const fetch = async (ref: BlobRef): Promise<Buffer> => {
    const store = stores.get(ref.store)
    if (store === undefined) {
      throw new WeirError('WEIR_ERR_BLOB_FOREIGN', `blob reference names store ${ref.store}, which this reader does not have (it has ${[...stores.keys()].join(', ')})`, { details: { ref } })
    }
    const bytes = await store.get(ref.key)
    const sha256 = sha256Hex(bytes)
    if (bytes.byteLength !== ref.size || sha256 !== ref.sha256) {
      throw new WeirError('WEIR_ERR_BLOB_INTEGRITY', `blob ${ref.key} has ${bytes.byteLength} bytes with SHA-256 ${sha256}; its reference says ${ref.size} bytes with ${ref.sha256}`, {
        details: { ref, size: bytes.byteLength, sha256 },
      })
    }
    return bytes
  }

  return Object.freeze({
    thresholdBytes,
    store: options.store,
    async offload<P>(envelope: Envelope<P>): Promise<Envelope<P>> {
      if (envelope.payloadRef !== undefined) return envelope
      const bytes = packValue(envelope.payload)
      if (bytes.byteLength <= thresholdBytes) return envelope
      const key = newBlobKey()
      const put = await options.store.put(key, bytes, { contentType: PAYLOAD_CONTENT_TYPE })
      const payloadRef: BlobRef = Object.freeze({ store: options.store.name, key, size: put.size, sha256: put.sha256, contentType: PAYLOAD_CONTENT_TYPE })
      return Object.freeze({ ...envelope, payload: null as P, payloadRef })
    },
    async resolve<P>(envelope: Envelope<P>): Promise<Envelope<P>> {
      const ref = envelope.payloadRef
      if (ref === undefined) return envelope
      const bytes = await fetch(ref)
      if (ref.contentType !== PAYLOAD_CONTENT_TYPE) {
        // Not a msgpack value: the handler gets the bytes themselves.
        const { payloadRef: _ref, ...rest } = envelope
        return Object.freeze({ ...rest, payload: bytes as P })
      }
      let payload: unknown
      try {
        payload = unpackValue(bytes)
      } catch (cause) {
        throw new WeirError('WEIR_ERR_BLOB_INTEGRITY', `blob ${ref.key} is not a msgpack value`, { cause, details: { ref } })
      }
      const { payloadRef: _ref, ...rest } = envelope
      return Object.freeze({ ...rest, payload: payload as P })
    },
    fetch,
  })
}

/** Errors of a reference that no retry can fix: the record goes to the dead-letter path. */
export function isBadReference(error: unknown): error is WeirError {
  return isWeirError(error, 'WEIR_ERR_BLOB_MISSING') || isWeirError(error, 'WEIR_ERR_BLOB_INTEGRITY') || isWeirError(error, 'WEIR_ERR_BLOB_FOREIGN')
}
