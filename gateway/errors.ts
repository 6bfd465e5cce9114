// Error helpers of the gateway protocol. Browser-safe (no node: imports): the client SDK uses it too.
// The codes themselves (socket frames, authentication) live with every other code in core/errors.ts.
import { WeirError, errorCodes } from '../core/errors.ts'
import type { ErrorCode, WeirErrorOptions } from '../core/errors.ts'

/** Every code that can appear in an error frame or a rejected client promise. */
export type WireErrorCode = ErrorCode

export function isWireErrorCode(code: unknown): code is WireErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCodes, code)
}

export function describeCode(code: WireErrorCode): string {
  return errorCodes[code]
}

export function gatewayError(code: WireErrorCode, message?: string, options: WeirErrorOptions = {}): WeirError {
  return new WeirError(code, message ?? describeCode(code), options)
}
