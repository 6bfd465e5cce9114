// Large payloads in the client SDK (docs/protocol.md, "Large payloads"): a command payload whose msgpack is over
// the upload threshold is uploaded first (POST /blobs with the connection's token) and the command frame carries
// the reference the gateway signed; a result by reference is downloaded from its short-lived link and checked
// against its size and SHA-256 before the send() promise resolves with the payload in place.
import { gatewayError } from '../errors.ts'
import { packValue, unpackValue } from '../protocol.ts'
import type { EventFrame, ResultFrame } from '../protocol.ts'

/** Payloads whose msgpack is larger go by upload (default 48 KiB: a command frame stays under the gateway's 64 KiB). */
export const DEFAULT_UPLOAD_THRESHOLD = 48 * 1024

/** The gateway's HTTP origin for a socket URL: ws → http, wss → https, same host and port. */
export function httpOrigin(socketUrl: string): string {
  const url = new URL(socketUrl)
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:'
  return url.origin
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
}

/** The payload as the command frame carries it: inline, or (over the threshold) null with an uploaded reference. */
export async function preparePayload(origin: string, token: () => Promise<string>, payload: unknown, threshold: number): Promise<{ payload: unknown; payloadRef?: unknown }> {
  const bytes = packValue(payload)
  if (bytes.byteLength <= threshold) return { payload }
  let response: Response
  try {
    response = await fetch(`${origin}/blobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await token()}`, 'content-type': 'application/msgpack' },
      body: bytes as Uint8Array<ArrayBuffer>,
    })
  } catch (cause) {
    throw gatewayError('WEIR_ERR_CLOSED', `uploading the payload to ${origin}/blobs failed`, { cause })
  }
  const answer = (await response.json().catch(() => ({}))) as { payloadRef?: unknown; error?: { code?: string; message?: string } }
  if (!response.ok || answer.payloadRef === undefined) {
    const code = answer.error?.code
    throw gatewayError(
      code === 'WEIR_ERR_BLOB_TOO_LARGE' || code === 'WEIR_ERR_UNAUTHENTICATED' || code === 'WEIR_ERR_TOKEN_EXPIRED' ? code : 'WEIR_ERR_BLOB_STORE',
      answer.error?.message ?? `upload answered HTTP ${response.status}`,
    )
  }
  return { payload: null, payloadRef: answer.payloadRef }
}

/** The result or event with its payload downloaded and verified, when it came by reference; else the frame itself. */
export async function resolvePayload<F extends ResultFrame | EventFrame>(origin: string, frame: F): Promise<F> {
  const ref = frame.payloadRef
  if (ref === undefined) return frame
  const response = await fetch(`${origin}${ref.url}`).catch((cause: unknown) => {
    throw gatewayError('WEIR_ERR_BLOB_STORE', `downloading the payload of ${frame.topic}/${frame.partition}@${frame.offset} failed`, { cause })
  })
  if (!response.ok) {
    const answer = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } }
    throw gatewayError(answer.error?.code === 'WEIR_ERR_BLOB_MISSING' ? 'WEIR_ERR_BLOB_MISSING' : 'WEIR_ERR_BLOB_STORE', answer.error?.message ?? `download answered HTTP ${response.status}`)
  }
  const bytes = new Uint8Array(await response.arrayBuffer())
  const sha256 = await sha256Hex(bytes)
  if (bytes.byteLength !== ref.size || sha256 !== ref.sha256) {
    throw gatewayError('WEIR_ERR_BLOB_INTEGRITY', `the payload of ${frame.topic}/${frame.partition}@${frame.offset} has ${bytes.byteLength} bytes with SHA-256 ${sha256}; its reference says ${ref.size} with ${ref.sha256}`)
  }
  const payload = ref.contentType === 'application/msgpack' ? unpackValue(bytes) : bytes
  const { payloadRef: _ref, ...rest } = frame
  return { ...rest, payload } as F
}
