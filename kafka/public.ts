// weir/kafka: the Kafka adapter for tools that talk to the cluster themselves (create topics, read or write records
// next to a running application) with the same connection settings and coded errors as weir's services. The rest of
// kafka/ (the group member, chunking, replication checks) is internal to the runtime and the gateway.
export { createAdmin } from './admin.ts'
export { createConsumer } from './consumer.ts'
export { createPartitionReader } from './reader.ts'
export { createProducer } from './producer.ts'
export { partitionFor } from './partitioner.ts'
export { isFencedError, isSecurityError } from './convert.ts'
export { kafkaFromEnvironment, loadClientProperties } from './client-properties.ts'

export type { KafkaAdmin } from './admin.ts'
export type { KafkaConsumer, KafkaConsumerOptions, RecordStream, SubscribeOptions } from './consumer.ts'
export type { PartitionBatch, PartitionReader, PartitionReaderOptions } from './reader.ts'
export type { KafkaProducer, KafkaProducerOptions, KafkaTransaction } from './producer.ts'
export type { CompressionType, KafkaConnection, KafkaSasl, KafkaTls, OAuthBearerToken, SaslMechanism } from './connection.ts'
export type { ClientProperties, KafkaEnvironment } from './client-properties.ts'
export type { ConsumedRecord, Isolation, KafkaClientOptions, OutgoingRecord, ProducedRecordMetadata, TopicPartition, TopicPartitionOffset, TopicSpec } from './types.ts'
