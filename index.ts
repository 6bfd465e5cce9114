// weir's public entry point. Everything a user may import is listed here explicitly: values first, then types.

export { ENVELOPE_SCHEMA_VERSION, DEFAULT_MAX_ENVELOPE_BYTES, createEnvelopeCodec, decodeEnvelope, encodeEnvelope, validateEnvelope } from './envelope/codec.ts'
export { MAX_BREADCRUMBS, createEnvelope, followUp, isTraceparent, spanId, traceId } from './envelope/envelope.ts'
export { EnvelopeError, WeirError, errorCodes, isWeirError } from './core/errors.ts'
export { channelNames } from './core/diagnostics.ts'
export { createAdmin, createConsumer, createProducer, isFencedError } from './kafka/index.ts'

export type { EnvelopeCodec, EnvelopeCodecOptions } from './envelope/codec.ts'
export type {
  Breadcrumb,
  CreateEnvelopeInput,
  Envelope,
  EnvelopeKind,
  FollowUpInput,
  ResultStatus,
  RetryState,
  TraceContext,
} from './envelope/envelope.ts'
export type { ErrorCode, WeirErrorOptions } from './core/errors.ts'
export type { ClientErrorMessage, EnvelopeRejectedMessage, TransactionMessage } from './core/diagnostics.ts'
export type {
  ConsumedRecord,
  Isolation,
  KafkaAdmin,
  KafkaClientOptions,
  KafkaConsumer,
  KafkaConsumerOptions,
  KafkaProducer,
  KafkaProducerOptions,
  KafkaTransaction,
  OutgoingRecord,
  ProducedRecordMetadata,
  RecordStream,
  SubscribeOptions,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
} from './kafka/index.ts'
