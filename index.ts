// weir's public entry point. Everything a user may import is listed here explicitly: values first, then types.
// The test driver has its own entry (weir/testing), the gateway too (weir/gateway: it loads the uWebSockets.js
// native addon, which a worker never needs), and the browser/Node client SDK (weir/client).

export { ENVELOPE_SCHEMA_VERSION, DEFAULT_MAX_ENVELOPE_BYTES, createEnvelopeCodec, decodeEnvelope, encodeEnvelope, validateEnvelope } from './envelope/codec.ts'
export { MAX_BREADCRUMBS, createEnvelope, followUp, isTraceparent, spanId, traceId } from './envelope/envelope.ts'
export { EnvelopeError, WeirError, errorCodes, isWeirError } from './core/errors.ts'
export { channelNames } from './core/diagnostics.ts'
export { commandPath, createCommandCatalog, deadlinesTopic } from './commands/catalog.ts'
export { createAdmin, createConsumer, createPartitionReader, createProducer, isFencedError, loadClientProperties, partitionFor } from './kafka/index.ts'
export { defineTopology } from './topology/define.ts'
export { StreamRecord } from './topology/record.ts'
export { serdes } from './topology/serde.ts'
export { changelogTopic, createStreamRuntime } from './topology/runtime/stream-runtime.ts'
export { DEAD_LETTER_HEADERS } from './topology/runtime/dead-letter.ts'
export { MemoryStore, createMemoryStore } from './state/memory-store.ts'
export { RocksDbStore, openRocksDbStore } from './state/rocksdb-store.ts'
export { openStore } from './state/open-store.ts'
export { dedupe } from './processors/dedupe.ts'
export { deadlineArbiter } from './processors/deadline-arbiter.ts'
export { dueDeliverySerde, scheduler, schedulerRequestSerde } from './processors/scheduler.ts'
export { NonRetriableError, commandRouter, createCommandRegistry } from './processors/command-router.ts'
export { commandService, commandServiceTopics } from './processors/command-service.ts'
export { backoffDelay, resolveRetryPolicy } from './processors/retry.ts'

export type { EnvelopeCodec, EnvelopeCodecOptions } from './envelope/codec.ts'
export type { Actor, Breadcrumb, CreateEnvelopeInput, Envelope, EnvelopeKind, FollowUpInput, ResultStatus, RetryState, TraceContext } from './envelope/envelope.ts'
export type { ErrorCode, WeirErrorOptions } from './core/errors.ts'
export type {
  ClientErrorMessage,
  CommitMessage,
  EnvelopeRejectedMessage,
  RestoreProgressMessage,
  RuntimeErrorMessage,
  TaskMessage,
  TransactionMessage,
} from './core/diagnostics.ts'
export type { CommandCatalog, CommandCatalogDescription, CommandSpec, JsonSchema, PayloadCheck, TopicBinding } from './commands/catalog.ts'
export type {
  ConsumedRecord,
  GroupMember,
  Isolation,
  KafkaAdmin,
  KafkaClientOptions,
  KafkaConsumer,
  KafkaConsumerOptions,
  KafkaProducer,
  KafkaProducerOptions,
  KafkaTransaction,
  OutgoingRecord,
  PartitionReader,
  ProducedRecordMetadata,
  RecordStream,
  SubscribeOptions,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
  ClientProperties,
  CompressionType,
  KafkaConnection,
  KafkaSasl,
  KafkaTls,
  OAuthBearerToken,
} from './kafka/index.ts'
export type { ProcessorSpec, SinkSpec, SourceSpec, StoreSpec, Topology, TopologyInput } from './topology/define.ts'
export type {
  Cancellable,
  FiredTimer,
  KeyValueEntry,
  KeyValueStore,
  Processor,
  ProcessorContext,
  ProcessorFactory,
  RangeQuery,
  RecordMetadata,
  TimerService,
} from './topology/processor.ts'
export type { Serde, SerdeName, SerdeSpec } from './topology/serde.ts'
export type { ErrorPolicy } from './topology/runtime/task.ts'
export type { OpenedStore, RuntimeMetrics, RuntimeState, StoreOpener, StreamRuntime, StreamRuntimeOptions } from './topology/runtime/stream-runtime.ts'
export type { BatchOperation, KeyRange, KeyValueStore as ByteStore } from './state/kv-store.ts'
export type { RocksDbStoreOptions } from './state/rocksdb-store.ts'
export type { CommandContext, CommandHandler, CommandRegistry, CommandRouterOptions } from './processors/command-router.ts'
export type { CommandService, CommandServiceOptions, CommandServiceTopics } from './processors/command-service.ts'
export type { DeadlineArbiterOptions } from './processors/deadline-arbiter.ts'
export type { DedupeOptions } from './processors/dedupe.ts'
export type { CancelRequest, ScheduleRequest, SchedulerRequest } from './processors/scheduler.ts'
export type { RetryPolicy } from './processors/retry.ts'
