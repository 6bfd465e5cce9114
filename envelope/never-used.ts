// msgpack's never-used byte 0xc1: msgpackr decodes it to a marker object instead of failing, so the envelope codec
// and the gateway's frame parser look for that marker. Browser-safe (the client SDK imports the frame parser).
import { C1 } from 'msgpackr'

/** Whether msgpack `raw`, decoded by msgpackr into `decoded`, held the never-used byte 0xc1 in place of a value. */
export function holdsNeverUsed(raw: Uint8Array, decoded: unknown): boolean {
  return raw.indexOf(0xc1) !== -1 && containsNeverUsed(decoded)
}

function containsNeverUsed(value: unknown): boolean {
  if (value === C1) return true
  if (Array.isArray(value)) return value.some(containsNeverUsed)
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) return Object.values(value).some(containsNeverUsed)
  return false
}
