// weir's public entry point: what a topology author and an operator use, listed explicitly, values first, then
// types. The test driver has its own entry (weir/testing), the gateway too (weir/gateway: it loads the uWebSockets.js
// native addon, which a worker never needs), the browser/Node client SDK (weir/client), and the Kafka adapter
// (weir/kafka) for tools that talk to the cluster directly. The runtime, the stores and the dead-letter layout are
// internal: `weir worker` runs a topology (docs/worker.md). docs/api-report.md lists every entry's names.

export { ENVELOPE_SCHEMA_VERSION, DEFAULT_MAX_ENVELOPE_BYTES, createEnvelopeCodec, decodeEnvelope, encodeEnvelope, validateEnvelope } from './envelope/codec.ts'
export { MAX_BREADCRUMBS, createEnvelope, followUp, isTraceparent, spanId, traceId } from './envelope/envelope.ts'
export { EnvelopeError, WeirError, errorCodes, isWeirError } from './core/errors.ts'
export { channelNames } from './core/diagnostics.ts'
export { commandPath, createCommandCatalog, deadlinesTopic } from './commands/catalog.ts'
export { loadClientProperties } from './kafka/index.ts'
export { defineTopology } from './topology/define.ts'
export { StreamRecord } from './topology/record.ts'
export { serdes } from './topology/serde.ts'
export { dedupe } from './processors/dedupe.ts'
export { deadlineArbiter } from './processors/deadline-arbiter.ts'
export { dueDeliverySerde, scheduler, schedulerRequestSerde } from './processors/scheduler.ts'
export { NonRetriableError, commandRouter, createCommandRegistry } from './processors/command-router.ts'
export { commandService, commandServiceTopics } from './processors/command-service.ts'
export { createFsBlobStore } from './blobs/fs-blob-store.ts'
export { createS3BlobStore } from './blobs/s3-blob-store.ts'
export { DEFAULT_CLAIM_CHECK_THRESHOLD, createClaimCheck } from './blobs/claim-check.ts'
export { collectOrphanBlobs } from './blobs/collector.ts'
export { backoffDelay, resolveRetryPolicy } from './processors/retry.ts'
export { defineSaga, sagaTopicSpecs } from './processors/saga.ts'
export { parseStepRequestId, stepRequestId } from './processors/saga-definition.ts'
export { SAGA_STATES } from './processors/saga-state.ts'
export { FAULT_HEADER, createFaultInjector } from './processors/faults/injector.ts'
export { FAULT_KINDS, parseFaultControl, parseFaultRule, parseFaultRules } from './processors/faults/rules.ts'
export { withFaults } from './processors/faults/processor-faults.ts'

export type { EnvelopeCodec, EnvelopeCodecOptions } from './envelope/codec.ts'
export type { BlobBody, BlobEntry, BlobStore, PutOptions, PutResult } from './blobs/blob-store.ts'
export type { FsBlobStoreOptions } from './blobs/fs-blob-store.ts'
export type { S3BlobStoreOptions } from './blobs/s3-blob-store.ts'
export type { ClaimCheck, ClaimCheckOptions } from './blobs/claim-check.ts'
export type { CollectionReport, CollectorOptions } from './blobs/collector.ts'
export type { Actor, BlobRef, Breadcrumb, CreateEnvelopeInput, Envelope, EnvelopeKind, FollowUpInput, ResultStatus, RetryState, TraceContext } from './envelope/envelope.ts'
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
export type {
  CommandCatalog,
  CommandCatalogDescription,
  CommandSpec,
  EventStreamSpec,
  JsonSchema,
  PayloadCheck,
  StreamSubscriber,
  TopicBinding,
} from './commands/catalog.ts'
export type { ClientProperties, CompressionType, KafkaConnection, KafkaSasl, KafkaTls, OAuthBearerToken } from './kafka/index.ts'
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
export type { CommandContext, CommandHandler, CommandRegistry, CommandRouterOptions } from './processors/command-router.ts'
export type { CommandService, CommandServiceOptions, CommandServiceTopics } from './processors/command-service.ts'
export type { DeadlineArbiterOptions } from './processors/deadline-arbiter.ts'
export type { DedupeOptions } from './processors/dedupe.ts'
export type { CancelRequest, ScheduleRequest, SchedulerRequest } from './processors/scheduler.ts'
export type { RetryPolicy } from './processors/retry.ts'
export type { Saga, SagaTopics } from './processors/saga.ts'
export type { SagaMetrics } from './processors/saga-coordinator.ts'
export type { SagaDefinition, SagaMessageSpec, SagaPhase, SagaStartSpec, SagaStepSpec, SagaView, StepAddress } from './processors/saga-definition.ts'
export type { SagaHistoryEntry, SagaState, SagaStatus } from './processors/saga-state.ts'
export type { FaultInjection, FaultInjector } from './processors/faults/injector.ts'
export type { FaultControl, FaultKind, FaultMatch, FaultRule } from './processors/faults/rules.ts'
export type { ProcessorFaultOptions } from './processors/faults/processor-faults.ts'
