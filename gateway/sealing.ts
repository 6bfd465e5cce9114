// Server side of result encryption. The key is agreed once per socket (ECDH with a fresh gateway key pair,
// HKDF-SHA-256), so sealing a result is one synchronous AES-256-GCM call: live dispatch must not await.
import { createCipheriv, createECDH, hkdfSync, randomBytes } from 'node:crypto'

import { gatewayError } from './errors.ts'
import { SEALING_INFO, packValue, sealingAad, toBase64Url } from './protocol.ts'
import type { ResultFrame, TimeoutFrame } from './protocol.ts'

export interface Sealer {
  /** The gateway's ephemeral public key for this socket (welcome.sealing.epk). */
  readonly epk: string
  seal<F extends ResultFrame | TimeoutFrame>(frame: F): F
}

/** Throws WEIR_ERR_HANDSHAKE_INVALID when `clientKey` is not an uncompressed P-256 point. */
export function createSealer(clientKey: Uint8Array, sessionId: string): Sealer {
  if (clientKey.byteLength !== 65 || clientKey[0] !== 0x04) {
    throw gatewayError('WEIR_ERR_HANDSHAKE_INVALID', 'key must be an uncompressed P-256 public key (65 bytes, base64url)')
  }
  const ecdh = createECDH('prime256v1')
  ecdh.generateKeys()
  let shared: Buffer
  try {
    shared = ecdh.computeSecret(clientKey)
  } catch (cause) {
    throw gatewayError('WEIR_ERR_HANDSHAKE_INVALID', 'key is not a point on P-256', { cause })
  }
  const key = Buffer.from(hkdfSync('sha256', shared, Buffer.from(sessionId, 'utf8'), Buffer.from(SEALING_INFO, 'utf8'), 32))
  return {
    epk: toBase64Url(ecdh.getPublicKey()),
    seal(frame) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      cipher.setAAD(sealingAad(frame))
      const ct = Buffer.concat([cipher.update(packValue(frame.payload)), cipher.final(), cipher.getAuthTag()])
      return { ...frame, payload: null, sealed: { iv: toBase64Url(iv), ct: toBase64Url(ct) } }
    },
  }
}
