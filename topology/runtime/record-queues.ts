// Fetched records wait in one queue per (task, source topic), like Kafka Streams' RecordQueue and PartitionGroup.
// The loop (stream-loop.ts) takes one record from each non-empty queue in turn, so a small topic (deadline
// registrations, say) is never stuck behind a large backlog of another topic of the same task, and between records
// it fires due timers and commits when the interval is up, so deadlines and commits stay on time during a backlog.
// A queue that runs dry sends the loop back to fetch (without waiting while other queues still hold records).
import { partitionKey } from '../../kafka/index.ts'
import type { ConsumedRecord, PartitionBatch, TopicPartitionOffset } from '../../kafka/index.ts'
import type { LiveTask } from './runtime-context.ts'

export interface RecordQueue {
  readonly live: LiveTask
  readonly topic: string
  readonly records: readonly ConsumedRecord[]
  index: number
  readonly nextOffset: bigint
}


export class RecordQueues {
  readonly #queues = new Map<string, RecordQueue>()

  get size(): number {
    return this.#queues.size
  }

  /** The queues in the order the loop takes one record from each (a queue may be removed while iterating). */
  entries(): IterableIterator<[string, RecordQueue]> {
    return this.#queues.entries()
  }

  add(live: LiveTask, batch: Pick<PartitionBatch, 'topic' | 'partition' | 'records' | 'nextOffset'>): void {
    this.#queues.set(partitionKey(batch.topic, batch.partition), { live, topic: batch.topic, records: batch.records, index: 0, nextOffset: batch.nextOffset })
  }

  remove(key: string): void {
    this.#queues.delete(key)
  }

  clear(): void {
    this.#queues.clear()
  }

  /** Queues of tasks that were closed or re-created (a failed commit rewinds them) are dropped. */
  dropStale(tasks: ReadonlyMap<number, LiveTask>): void {
    for (const [key, queue] of this.#queues) if (tasks.get(queue.live.task.partition) !== queue.live) this.#queues.delete(key)
  }

  /** Where to fetch: the position of each source topic of each task that has no queue of it. */
  positionsToFetch(tasks: ReadonlyMap<number, LiveTask>, sourceTopics: readonly string[]): TopicPartitionOffset[] {
    const positions: TopicPartitionOffset[] = []
    for (const live of tasks.values()) {
      for (const topic of sourceTopics) {
        if (!this.#queues.has(partitionKey(topic, live.task.partition))) positions.push({ topic, partition: live.task.partition, offset: live.task.position(topic) ?? 0n })
      }
    }
    return positions
  }
}
