// Where keyed records go: the Java client's partitioner (murmur2 of the key, positive, modulo the partition count).
import { compatibilityPartitioner, murmur2 } from '@platformatic/kafka'
import type { MessageToProduce, PartitionerContext } from '@platformatic/kafka'

/**
 * The partition a keyed record goes to among `count` partitions, as the Java client, Kafka Streams and weir's
 * producers place it: murmur2(key) & 0x7fffffff modulo the count.
 */
export function partitionFor(key: Uint8Array | string, count: number): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : Buffer.from(key.buffer, key.byteOffset, key.byteLength)
  return (murmur2(bytes, false) & 0x7fffffff) % count
}

/**
 * Keyed records go where the Java client (and Kafka Streams) would put them: murmur2(key) & 0x7fffffff modulo
 * the partition count. The client's default uses the unsigned hash instead, which disagrees with every other
 * Kafka client for about half of all keys. Records without a key are spread round-robin.
 */
export function javaCompatiblePartitioner() {
  const next = new Map<string, number>()
  return (message: MessageToProduce<Buffer, Buffer, Buffer, Buffer>, key: Buffer | undefined, context: PartitionerContext): number => {
    const count = context.metadata?.topics.get(message.topic)?.partitionsCount
    if (key !== undefined && key !== null) {
      const hash = compatibilityPartitioner(message, key)
      return count === undefined ? hash : hash % count
    }
    const n = next.get(message.topic) ?? 0
    next.set(message.topic, n + 1)
    return count === undefined ? n : n % count
  }
}
