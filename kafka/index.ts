// The only module of weir that imports @platformatic/kafka (enforced by the lint rule in eslint.config.js).
export { createAdmin } from './admin.ts'
export { committedOffsets, createConsumer } from './consumer.ts'
export { createGroupMember } from './group.ts'
export { createPartitionReader } from './reader.ts'
export { isFencedError } from './convert.ts'
export { createProducer, partitionFor } from './producer.ts'
export { MAX_SEND_BYTES, chunkRecords, estimateRecordBytes } from './chunks.ts'
export type { KafkaAdmin } from './admin.ts'
export type { KafkaConsumer, KafkaConsumerOptions, RecordStream, SubscribeOptions } from './consumer.ts'
export type { GroupGeneration, GroupMember, GroupMemberOptions } from './group.ts'
export type { PartitionBatch, PartitionReader, PartitionReaderOptions } from './reader.ts'
export type { KafkaProducer, KafkaProducerOptions, KafkaTransaction } from './producer.ts'
export type {
  ConsumedRecord,
  Isolation,
  KafkaClientOptions,
  OutgoingRecord,
  ProducedRecordMetadata,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
} from './types.ts'
