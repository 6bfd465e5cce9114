// Result sealing on the client's side (docs/protocol.md): the ECDH key pair whose public half goes in the upgrade
// URL, the per-connection AES-GCM key derived from the gateway's ephemeral key, and decrypting sealed results.
import { gatewayError } from '../errors.ts'
import { SEALING_INFO, fromBase64Url, sealingAad, toBase64Url, unpackValue } from '../protocol.ts'
import type { ResultFrame, Sealing, TimeoutFrame } from '../protocol.ts'

export interface SealingKeys {
  readonly privateKey: CryptoKey
  /** Uncompressed P-256 point, base64url: the `key` upgrade parameter. */
  readonly publicKey: string
}

export async function createSealingKeys(): Promise<SealingKeys> {
  const pair = (await globalThis.crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits'])) as CryptoKeyPair
  const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey('raw', pair.publicKey))
  return { privateKey: pair.privateKey, publicKey: toBase64Url(raw) }
}

/** The AES-GCM key of one connection: ECDH(client private, gateway ephemeral public) -> HKDF-SHA-256. */
export async function deriveSealingKey(keys: SealingKeys, sealing: Sealing, sessionId: string): Promise<CryptoKey> {
  const subtle = globalThis.crypto.subtle
  const gatewayKey = await subtle.importKey('raw', fromBase64Url(sealing.epk) as Uint8Array<ArrayBuffer>, { name: 'ECDH', namedCurve: 'P-256' }, false, [])
  const shared = await subtle.deriveBits({ name: 'ECDH', public: gatewayKey }, keys.privateKey, 256)
  const hkdf = await subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey'])
  const utf8 = new TextEncoder()
  return subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: utf8.encode(sessionId), info: utf8.encode(SEALING_INFO) },
    hkdf,
    { name: 'AES-GCM', length: 256 },
    false,
    ['decrypt'],
  )
}

export async function unseal<F extends ResultFrame | TimeoutFrame>(frame: F, key: CryptoKey | undefined): Promise<F> {
  if (frame.sealed === undefined) return frame
  if (key === undefined) throw gatewayError('WEIR_ERR_DECRYPT', 'a sealed result arrived but this connection has no key')
  try {
    const plain = await globalThis.crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: fromBase64Url(frame.sealed.iv) as Uint8Array<ArrayBuffer>, additionalData: sealingAad(frame) as Uint8Array<ArrayBuffer> },
      key,
      fromBase64Url(frame.sealed.ct) as Uint8Array<ArrayBuffer>,
    )
    const { sealed: _sealed, ...rest } = frame
    return { ...rest, payload: unpackValue(new Uint8Array(plain)) } as F
  } catch (cause) {
    throw gatewayError('WEIR_ERR_DECRYPT', `result ${frame.requestId} could not be decrypted`, { cause })
  }
}
