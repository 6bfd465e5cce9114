// An immutable record flowing through a topology. Changing it means making a new one (withX).

export type Headers = ReadonlyMap<string, Buffer>

export class StreamRecord<K = unknown, V = unknown> {
  readonly key: K
  readonly value: V
  /** Event time, ms since the epoch. */
  readonly timestamp: number
  readonly headers: Headers

  constructor(key: K, value: V, timestamp: number, headers: Headers = new Map()) {
    this.key = key
    this.value = value
    this.timestamp = timestamp
    this.headers = headers
    Object.freeze(this)
  }

  withKey<K2>(key: K2): StreamRecord<K2, V> {
    return new StreamRecord(key, this.value, this.timestamp, this.headers)
  }

  withValue<V2>(value: V2): StreamRecord<K, V2> {
    return new StreamRecord(this.key, value, this.timestamp, this.headers)
  }

  withTimestamp(timestamp: number): StreamRecord<K, V> {
    return new StreamRecord(this.key, this.value, timestamp, this.headers)
  }

  /** Adds or replaces headers (strings are stored as UTF-8). */
  withHeaders(headers: Readonly<Record<string, Buffer | string>>): StreamRecord<K, V> {
    const merged = new Map(this.headers)
    for (const [name, value] of Object.entries(headers)) merged.set(name, typeof value === 'string' ? Buffer.from(value) : value)
    return new StreamRecord(this.key, this.value, this.timestamp, merged)
  }
}
