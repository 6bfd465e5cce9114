// Argument checks and errors shared by the store implementations, so both reject bad input and use-after-close
// with the same coded errors (the conformance suite asserts the codes).
import { WeirError } from '../core/errors.ts'
import type { BatchOperation, KeyRange } from './kv-store.ts'

/** A Buffer view of caller bytes (no copy); anything that is not a Uint8Array is a coded error, not a TypeError. */
export function bytes(value: unknown, what: string, store: string): Buffer {
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `${store}: ${what} must be a Buffer or Uint8Array, got ${describe(value)}`, {
    details: { store, argument: what },
  })
}

/** Checks every operation before any is applied, so a bad batch changes nothing. */
export function batchOperations(operations: unknown, store: string): BatchOperation[] {
  if (!Array.isArray(operations)) throw invalidArgument(store, `write() takes an array of operations, got ${describe(operations)}`)
  return operations.map((op: unknown, i) => {
    const o = op as Partial<Record<'type' | 'key' | 'value', unknown>> | null
    if (o?.type === 'put') {
      return { type: 'put', key: bytes(o.key, `operation ${i} key`, store), value: bytes(o.value, `operation ${i} value`, store) }
    }
    if (o?.type === 'delete') return { type: 'delete', key: bytes(o.key, `operation ${i} key`, store) }
    throw invalidArgument(store, `operation ${i} must be { type: 'put', key, value } or { type: 'delete', key }`)
  })
}

/**
 * A validated copy of a range: byte bounds, boolean reverse, integer limit >= 0 (Infinity allowed). Of gte/gt and
 * of lte/lt only the tighter one is kept, so an implementation sees at most one lower and one upper bound.
 */
export function keyRange(range: unknown, store: string): KeyRange {
  if (range === undefined) return {}
  if (typeof range !== 'object' || range === null) throw invalidArgument(store, `a range must be an object, got ${describe(range)}`)
  const r = range as Record<string, unknown>
  const out: KeyRange = {}
  for (const bound of ['gte', 'gt', 'lte', 'lt'] as const) if (r[bound] !== undefined) out[bound] = bytes(r[bound], `range.${bound}`, store)
  if (r.reverse !== undefined) {
    if (typeof r.reverse !== 'boolean') throw invalidArgument(store, 'range.reverse must be a boolean')
    out.reverse = r.reverse
  }
  if (r.limit !== undefined) {
    const limit = r.limit
    if (typeof limit !== 'number' || !(Number.isInteger(limit) || limit === Infinity) || limit < 0) {
      throw invalidArgument(store, `range.limit must be an integer >= 0, got ${describe(limit)}`)
    }
    out.limit = limit
  }
  if (out.gte !== undefined && out.gt !== undefined) {
    if (Buffer.compare(out.gt, out.gte) >= 0) delete out.gte
    else delete out.gt
  }
  if (out.lte !== undefined && out.lt !== undefined) {
    if (Buffer.compare(out.lt, out.lte) <= 0) delete out.lte
    else delete out.lt
  }
  return out
}

export function closedError(store: string): WeirError {
  return new WeirError('WEIR_ERR_CLOSED', `${store} is not open`, { details: { store } })
}

export function storeError(store: string, operation: string, cause: unknown): WeirError {
  const message = cause instanceof Error ? cause.message : String(cause)
  return new WeirError('WEIR_ERR_STATE_STORE', `${store}: ${operation} failed: ${message}`, { cause, details: { store, operation } })
}

function invalidArgument(store: string, message: string): WeirError {
  return new WeirError('WEIR_ERR_INVALID_OPTIONS', `${store}: ${message}`, { details: { store } })
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? (value.constructor?.name ?? 'an object') : typeof value
}
