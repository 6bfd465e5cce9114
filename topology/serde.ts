// Serdes turn record keys and values into bytes and back. A deserializer that throws sends the record to
// the dead-letter topic (the error keeps the raw bytes).
import { decodeEnvelope, encodeEnvelope } from '../envelope/codec.ts'
import type { Envelope } from '../envelope/envelope.ts'
import { Packr } from 'msgpackr'

export interface Serde<T> {
  /** `undefined`/`null` values become a null record value (a tombstone on compacted topics). */
  serialize(value: T): Buffer | null
  deserialize(bytes: Buffer | undefined): T
}

export type SerdeName = 'buffer' | 'string' | 'json' | 'msgpack' | 'envelope'

const packr = new Packr({ useRecords: false, moreTypes: false })

export const serdes = {
  buffer: {
    serialize: (value: Buffer | null | undefined) => value ?? null,
    deserialize: (bytes: Buffer | undefined) => bytes ?? Buffer.alloc(0),
  } satisfies Serde<Buffer | null | undefined>,
  string: {
    serialize: (value: string | null | undefined) => (value === null || value === undefined ? null : Buffer.from(value, 'utf8')),
    deserialize: (bytes: Buffer | undefined) => bytes?.toString('utf8') ?? '',
  } satisfies Serde<string | null | undefined>,
  json: {
    serialize: (value: unknown) => (value === null || value === undefined ? null : Buffer.from(JSON.stringify(value), 'utf8')),
    deserialize: (bytes: Buffer | undefined) => (bytes === undefined || bytes.length === 0 ? null : JSON.parse(bytes.toString('utf8'))),
  } satisfies Serde<unknown>,
  msgpack: {
    serialize: (value: unknown) => (value === null || value === undefined ? null : packr.pack(value)),
    deserialize: (bytes: Buffer | undefined) => (bytes === undefined || bytes.length === 0 ? null : packr.unpack(bytes)),
  } satisfies Serde<unknown>,
  envelope: {
    serialize: (value: Envelope | null | undefined) => (value === null || value === undefined ? null : encodeEnvelope(value)),
    deserialize: (bytes: Buffer | undefined) => decodeEnvelope(bytes ?? Buffer.alloc(0)),
  } satisfies Serde<Envelope | null | undefined>,
} as const

export type SerdeSpec = SerdeName | Serde<unknown>

export function resolveSerde(spec: SerdeSpec | undefined, fallback: SerdeName): Serde<unknown> {
  if (spec === undefined) return serdes[fallback] as Serde<unknown>
  if (typeof spec === 'string') return serdes[spec] as Serde<unknown>
  return spec
}

export function isSerdeSpec(value: unknown): boolean {
  if (typeof value === 'string') return value in serdes
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Serde<unknown>).serialize === 'function' &&
    typeof (value as Serde<unknown>).deserialize === 'function'
  )
}
