// The only module of weir that imports @platformatic/kafka (enforced by the lint rule in eslint.config.js).
export { createAdmin } from './admin.ts'
export { createClusterView } from './cluster.ts'
export { committedOffsets, createConsumer } from './consumer.ts'
export { createGroupMember } from './group.ts'
export { createPartitionReader } from './reader.ts'
export { keyOfPartition, partitionKey } from './partition-key.ts'
export { isFencedError, isSecurityError } from './convert.ts'
export { partitionFor } from './partitioner.ts'
export { createProducer } from './producer.ts'
export { MAX_SEND_BYTES, chunkRecords, estimateRecordBytes } from './chunks.ts'
export { COMPRESSION_TYPES, SASL_MECHANISMS, describeConnection, refreshingTokenProvider } from './connection.ts'
export { checkReplication, validateReplication, withReplication } from './replication.ts'
export { SUPPORTED_PROPERTIES, clientPropertiesFrom, kafkaFromEnvironment, loadClientProperties, parsePropertiesText, readKafkaConfig } from './client-properties.ts'
export type { KafkaAdmin } from './admin.ts'
export type { ClusterView } from './cluster.ts'
export type { CompressionType, KafkaConnection, KafkaSasl, KafkaTls, OAuthBearerToken, SaslMechanism } from './connection.ts'
export type { ClientProperties, KafkaEnvironment } from './client-properties.ts'
export type { ReplicationSettings } from './replication.ts'
export type { KafkaConsumer, KafkaConsumerOptions, RecordStream, SubscribeOptions } from './consumer.ts'
export type { GroupGeneration, GroupMember, GroupMemberOptions } from './group.ts'
export type { PartitionBatch, PartitionReader, PartitionReaderOptions } from './reader.ts'
export type { KafkaProducer, KafkaProducerOptions, KafkaTransaction } from './producer.ts'
export type {
  AclBinding,
  ConsumedRecord,
  Isolation,
  KafkaClientOptions,
  OutgoingRecord,
  ProducedRecordMetadata,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
} from './types.ts'
