// How records enter and leave a task: its sources (topic -> source node, with serdes) and sinks (node -> topic,
// partition and serdes), as the topology declares them.
import { WeirError, isWeirError } from '../../core/errors.ts'
import type { ConsumedRecord, OutgoingRecord } from '../../kafka/types.ts'
import type { SinkSpec, Topology } from '../define.ts'
import type { StreamRecord } from '../record.ts'
import { resolveSerde } from '../serde.ts'
import type { Serde } from '../serde.ts'

export interface SourceRuntime {
  name: string
  key: Serde<unknown>
  value: Serde<unknown>
}

export interface SinkRuntime {
  spec: SinkSpec
  key: Serde<unknown>
  value: Serde<unknown>
}

/** Sources by the topic they read. */
export function sourcesOf(topology: Topology): Map<string, SourceRuntime> {
  const sources = new Map<string, SourceRuntime>()
  for (const [name, spec] of Object.entries(topology.sources)) {
    sources.set(spec.topic, { name, key: resolveSerde(spec.keySerde, 'buffer'), value: resolveSerde(spec.valueSerde, 'buffer') })
  }
  return sources
}

/** Sinks by node name. */
export function sinksOf(topology: Topology): Map<string, SinkRuntime> {
  const sinks = new Map<string, SinkRuntime>()
  for (const [name, spec] of Object.entries(topology.sinks)) {
    sinks.set(name, { spec, key: resolveSerde(spec.keySerde, 'buffer'), value: resolveSerde(spec.valueSerde, 'buffer') })
  }
  return sinks
}

export function deserializeInput(source: SourceRuntime, consumed: ConsumedRecord): { key: unknown; value: unknown } {
  try {
    return { key: source.key.deserialize(consumed.key), value: source.value.deserialize(consumed.value) }
  } catch (cause) {
    throw isWeirError(cause)
      ? cause
      : new WeirError('WEIR_ERR_DESERIALIZATION', `cannot deserialize ${consumed.topic}[${consumed.partition}]@${consumed.offset}`, { cause })
  }
}

/** The record a sink sends; records without a key (and no partition function) stay on the task's partition. */
export function sinkOutput(sink: SinkRuntime, record: StreamRecord, taskPartition: number): OutgoingRecord {
  const topic = typeof sink.spec.topic === 'function' ? sink.spec.topic(record) : sink.spec.topic
  const key = sink.key.serialize(record.key)
  const partition = sink.spec.partition?.(record, { partition: taskPartition }) ?? (key === null ? taskPartition : undefined)
  return {
    topic,
    key,
    value: sink.value.serialize(record.value),
    timestamp: BigInt(Math.floor(record.timestamp)),
    ...(partition === undefined ? {} : { partition }),
    ...(record.headers.size > 0 ? { headers: Object.fromEntries(record.headers) } : {}),
  }
}
