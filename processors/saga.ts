// A choreography saga as one topology: a router re-keys what concerns the saga (its start messages and the
// participants' results and events for its steps) by saga id onto the saga's inbox topic, and the coordinator
// (saga-coordinator.ts), reading the inbox, keeps each saga's state in a store with a changelog and a durable
// timer per saga, and sends the steps' messages and the saga's own events.
//
//   start topic ──┐
//   reply topics ─┴▶ router ──▶ inbox ──▶ coordinator (store `sagas`, timers) ──▶ participants' topics, saga events
//
// The inbox is a repartition topic, like Kafka Streams' through(): a participant's result is keyed by its request
// id, an event by the participant's key, and the saga's state lives on the partition of its saga id.
import { WeirError } from '../core/errors.ts'
import type { Envelope } from '../envelope/envelope.ts'
import { defineTopology } from '../topology/define.ts'
import type { SinkSpec, SourceSpec, Topology } from '../topology/define.ts'
import type { Processor, ProcessorContext, ProcessorFactory } from '../topology/processor.ts'
import { StreamRecord } from '../topology/record.ts'
import { SAGA_INPUT_HEADER, SAGA_STORE, newSagaMetrics, sagaCoordinator } from './saga-coordinator.ts'
import type { SagaMetrics } from './saga-coordinator.ts'
import { parseStepRequestId, resolveSaga } from './saga-definition.ts'
import type { ResolvedSaga, SagaDefinition } from './saga-definition.ts'

export interface SagaTopics {
  /** Where starts and replies wait, keyed by saga id. */
  readonly inbox: string
  /** The saga's own events. */
  readonly events: string
  /** Every topic the topology reads besides the inbox: the start topic and the reply topics. */
  readonly inputs: readonly string[]
  /** The topic the coordinator's store `sagas` is changelogged to, for `weir saga` (given the application id). */
  changelog(applicationId: string): string
}

export interface Saga {
  readonly name: string
  readonly topology: Topology
  readonly topics: SagaTopics
  readonly metrics: SagaMetrics
  /** The name of the store holding saga states. */
  readonly store: string
}

function sagaRouter(saga: ResolvedSaga, metrics: SagaMetrics): ProcessorFactory {
  const start = saga.definition.start
  return (): Processor<unknown, Envelope> => {
    let context: ProcessorContext
    return {
      init(c) {
        context = c
      },
      async process(record: StreamRecord<unknown, Envelope>) {
        const envelope = record.value
        const topic = context.recordMetadata()?.topic
        const forward = (sagaId: string, input: 'start' | 'reply') =>
          context.forward(new StreamRecord(sagaId, envelope, record.timestamp, new Map([[SAGA_INPUT_HEADER, Buffer.from(input)]])))
        if (topic === start.topic && envelope.alias === start.alias && envelope.kind === (start.kind ?? 'event')) {
          const sagaId = start.sagaId(envelope)
          if (typeof sagaId !== 'string' || sagaId.length === 0) {
            throw new WeirError('WEIR_ERR_SAGA_START_INVALID', `saga ${saga.name}: ${envelope.kind} ${envelope.alias} ${envelope.id} gives no saga id`, { details: { saga: saga.name, id: envelope.id } })
          }
          await forward(sagaId, 'start')
          return
        }
        const address = envelope.kind === 'command' ? undefined : parseStepRequestId(saga.name, envelope.requestId)
        if (address === undefined) {
          metrics.ignored++
          return
        }
        await forward(address.sagaId, 'reply')
      },
    }
  }
}

/** The saga's topology (run it with `weir worker` like any other) with its topics and metrics. */
export function defineSaga<D = unknown>(definition: SagaDefinition<D>): Saga {
  const saga = resolveSaga(definition as SagaDefinition)
  const metrics = newSagaMetrics()
  const envelope = { keySerde: 'string' as const, valueSerde: 'envelope' as const }
  const inputs = [...new Set([saga.definition.start.topic, ...saga.definition.replyTopics])]
  const sources: Record<string, SourceSpec> = { inbox: { topic: saga.topics.inbox, ...envelope } }
  // Keys of the inputs are the participants' business: read as bytes, they are never looked at.
  inputs.forEach((topic, i) => {
    sources[`input-${i}`] = { topic, keySerde: 'buffer', valueSerde: 'envelope' }
  })
  // One sink per topic the coordinator sends to: the saga's events topic and every step's and compensation's.
  const targets = [...new Set([saga.topics.events, ...saga.steps.flatMap((step) => [step.spec.topic, ...(step.compensation === undefined ? [] : [step.compensation.spec.topic])])])]
  const sinkOf = (topic: string) => `to-${targets.indexOf(topic)}`
  const sinks: Record<string, SinkSpec> = { 'to-inbox': { from: ['router'], topic: saga.topics.inbox, ...envelope } }
  for (const topic of targets) sinks[sinkOf(topic)] = { from: ['coordinator'], topic, ...envelope }
  const topology = defineTopology({
    sources,
    stores: { [SAGA_STORE]: { keySerde: 'string', valueSerde: 'json' } },
    processors: {
      router: { from: inputs.map((_, i) => `input-${i}`), use: sagaRouter(saga, metrics) },
      coordinator: { from: ['inbox'], stores: [SAGA_STORE], timers: true, use: sagaCoordinator(saga, metrics, sinkOf) },
    },
    sinks,
  })
  return Object.freeze({
    name: saga.name,
    topology,
    metrics,
    store: SAGA_STORE,
    topics: Object.freeze({
      inbox: saga.topics.inbox,
      events: saga.topics.events,
      inputs: Object.freeze(inputs),
      changelog: (applicationId: string) => `${applicationId}-${SAGA_STORE}-changelog`,
    }),
  })
}

/** The topics a saga needs created beside its participants' (same partition count as its inputs). */
export function sagaTopicSpecs(saga: Saga, partitions: number): Array<{ name: string; partitions: number }> {
  return [saga.topics.inbox, saga.topics.events].map((name) => ({ name, partitions }))
}
