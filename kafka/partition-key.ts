// One string per topic-partition, for maps and sets keyed by partition. NUL cannot occur in a Kafka topic name
// (legal characters: ASCII letters, digits, '.', '_', '-'), so no two partitions share a key.
import type { TopicPartition } from './types.ts'

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`
}

export function keyOfPartition(p: TopicPartition): string {
  return partitionKey(p.topic, p.partition)
}
