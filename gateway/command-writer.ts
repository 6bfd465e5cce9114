// Group commit of commands. The idempotent producer has one request in flight per broker (@platformatic/kafka
// forces maxInflights = 1 with idempotence), so one send per command caps the gateway at one command per
// round trip. Here the first command goes out at once (or after `lingerMs`, so more commands share the
// request); commands arriving while a send is in flight wait and go out together in the next send.
//
// A send answers with the base offset per partition, not per record. Each command's own offset (for its ack)
// is base + its index among the batch's records for that partition, so the writer needs each record's
// partition: it asks the adapter's partitioner (partitionFor, the same function the producer places records with).
import { WeirError } from '../core/errors.ts'
import { MAX_SEND_BYTES, estimateRecordBytes, partitionFor, partitionKey } from '../kafka/index.ts'
import type { KafkaProducer, OutgoingRecord, ProducedRecordMetadata } from '../kafka/index.ts'

export interface CommandWriterOptions {
  producer: KafkaProducer
  /** Partition count of a topic, or undefined when unknown (then no offset can be attributed). */
  partitionCount(topic: string): number | undefined
  /** Most records per send (default 1000). */
  maxRecords?: number
  /**
   * A send waits until its oldest command has waited this long (like the Java producer's linger.ms; default 0:
   * at once), so that more commands share one produce request: fewer requests for the broker and the gateway
   * at high rates, at the cost of up to `lingerMs` of latency per command. A command that waited through an
   * in-flight send for at least `lingerMs` goes in the next send at once.
   */
  lingerMs?: number
}

export interface CommandWriter {
  /** Produces `records` in the next send; resolves with where `records[0]` was written. */
  write(records: readonly OutgoingRecord[]): Promise<ProducedRecordMetadata>
  /** Resolves when everything queued so far has been sent (or failed). */
  flush(): Promise<void>
}

interface Entry {
  readonly records: readonly OutgoingRecord[]
  /** performance.now() when it was written. */
  readonly at: number
  readonly resolve: (metadata: ProducedRecordMetadata) => void
  readonly reject: (error: unknown) => void
}

export function createCommandWriter(options: CommandWriterOptions): CommandWriter {
  const maxRecords = options.maxRecords ?? 1000
  const lingerMs = options.lingerMs ?? 0
  let queue: Entry[] = []
  let queuedRecords = 0
  let inFlight: Promise<void> | undefined
  let lingering: NodeJS.Timeout | undefined

  function next(): void {
    if (inFlight !== undefined || queue.length === 0 || lingering !== undefined) return
    const wait = lingerMs - (performance.now() - (queue[0] as Entry).at)
    if (wait >= 1 && queuedRecords < maxRecords) {
      lingering = setTimeout(() => {
        lingering = undefined
        sendNext()
      }, wait)
      return
    }
    sendNext()
  }

  function sendNext(): void {
    if (lingering !== undefined) {
      clearTimeout(lingering)
      lingering = undefined
    }
    if (inFlight !== undefined || queue.length === 0) return
    // Bounded in bytes too, below the adapter's own chunk size, so one write is one produce request and
    // each partition's records in it have consecutive offsets from the reported base.
    let count = 0
    let bytes = 0
    let take = 0
    while (take < queue.length) {
      const entry = queue[take] as Entry
      const size = entry.records.reduce((sum, r) => sum + estimateRecordBytes(r), 0)
      if (take > 0 && (count + entry.records.length > maxRecords || bytes + size > MAX_SEND_BYTES)) break
      count += entry.records.length
      bytes += size
      take++
    }
    const batch = queue.slice(0, take)
    queue = queue.slice(take)
    queuedRecords -= count
    inFlight = send(batch).finally(() => {
      inFlight = undefined
      next()
    })
  }

  async function send(batch: Entry[]): Promise<void> {
    let written: ProducedRecordMetadata[]
    try {
      written = await options.producer.send(batch.flatMap((e) => e.records))
    } catch (error) {
      for (const entry of batch) entry.reject(error)
      return
    }
    const base = new Map(written.map((m) => [partitionKey(m.topic, m.partition), m.offset]))
    const index = new Map<string, bigint>()
    for (const entry of batch) {
      let first: ProducedRecordMetadata | undefined
      for (const [i, record] of entry.records.entries()) {
        const partition = record.partition ?? partitionOf(record, options.partitionCount(record.topic))
        if (partition === undefined) continue
        const key = partitionKey(record.topic, partition)
        const n = index.get(key) ?? 0n
        index.set(key, n + 1n)
        const offset = base.get(key)
        if (i === 0 && offset !== undefined) first = { topic: record.topic, partition, offset: offset + n }
      }
      if (first === undefined) entry.reject(new WeirError('WEIR_ERR_KAFKA', `no offset reported for ${entry.records[0]?.topic}`))
      else entry.resolve(first)
    }
  }

  return {
    write(records) {
      return new Promise((resolve, reject) => {
        queue.push({ records, at: performance.now(), resolve, reject })
        queuedRecords += records.length
        next()
      })
    },
    async flush() {
      while (inFlight !== undefined || queue.length > 0) {
        sendNext()
        await inFlight
      }
    },
  }
}

function partitionOf(record: OutgoingRecord, count: number | undefined): number | undefined {
  if (count === undefined || count <= 0 || record.key === undefined || record.key === null) return undefined
  return partitionFor(record.key, count)
}
