// A whole command service as one topology: dedupe -> command router -> deadline arbiter, and the
// delayed-envelope scheduler (for out-of-order retries and any scheduled message), on co-partitioned topics.
//
//   commands ──▶ dedupe ──▶ router ──▶ deadline arbiter ──▶ outcomes (the results topic)
//                            │                ▲      └───▶ late results
//                            │   deadlines ───┘  (from the gateway, keyed like the command: same partition)
//                            ├─▶ events
//                            ├─▶ dead letters
//                            └─▶ scheduler topic ──▶ scheduler ──▶ (due) any topic
//
// The router hands each result to the arbiter inside the command's own task, so a command's outcome is
// decided and produced in the transaction that consumed the command: one commit from command to outcome. It
// hands the arbiter the command's deadline registration first, so a handler that outlives the deadline loses
// to it even when the gateway's registration (on the deadlines topic) is still queued behind the command.
import { invalidOptions } from '../core/errors.ts'
import { deadlinesTopic } from '../commands/catalog.ts'
import type { Envelope } from '../envelope/envelope.ts'
import { defineTopology } from '../topology/define.ts'
import type { StoreSpec, Topology } from '../topology/define.ts'
import type { StreamRecord } from '../topology/record.ts'
import { commandRouter } from './command-router.ts'
import type { CommandRegistry, CommandRouterFactory, CommandRouterOptions } from './command-router.ts'
import { deadlineArbiter } from './deadline-arbiter.ts'
import type { DeadlineArbiterFactory } from './deadline-arbiter.ts'
import { dedupe } from './dedupe.ts'
import type { DedupeFactory } from './dedupe.ts'
import { dueDeliverySerde, scheduler, schedulerRequestSerde } from './scheduler.ts'
import type { SchedulerFactory } from './scheduler.ts'

export interface CommandServiceOptions {
  registry: CommandRegistry
  /** Stores the handlers use, by name (default: RocksDB with changelog for each). */
  stores?: Readonly<Record<string, StoreSpec>>
  dedupeRetentionMs?: number
  decisionRetentionMs?: number
  retry?: CommandRouterOptions['retry']
  /** Out-of-order retry policy for commands flagged `retry.outOfOrder`. */
  outOfOrder?: Omit<NonNullable<CommandRouterOptions['outOfOrder']>, 'schedulerTopic'>
  /** The scheduler's memory of delivered ids, ms (default 0: none; see SchedulerOptions.rememberDeliveredMs). */
  rememberDeliveredMs?: number
  /** Dead-letter topic of a source topic (default `<topic>.dlq`). */
  deadLetterTopic?: (sourceTopic: string) => string
  sleep?: (ms: number) => Promise<void>
  /** Fault injection in the router (docs/faults.md); export the same injector from the worker module as `faults`. */
  faults?: CommandRouterOptions['faults']
  /** Large payloads by reference (docs/payloads.md); see CommandRouterOptions.claimCheck. */
  claimCheck?: CommandRouterOptions['claimCheck']
}

export interface CommandServiceTopics {
  commands: string
  deadlines: string
  outcomes: string
  lateResults: string
  events: string
  scheduler: string
}

export interface CommandService {
  readonly topology: Topology
  readonly topics: CommandServiceTopics
  readonly metrics: {
    dedupe: DedupeFactory['metrics']
    router: CommandRouterFactory['metrics']
    arbiter: DeadlineArbiterFactory['metrics']
    scheduler: SchedulerFactory['metrics']
  }
}

export function commandServiceTopics(registry: CommandRegistry): CommandServiceTopics {
  const t = registry.topics
  return {
    commands: t.commands,
    deadlines: deadlinesTopic(t),
    outcomes: t.results,
    lateResults: `${t.results}.late`,
    events: t.events,
    scheduler: `${t.commands}.scheduler`,
  }
}

export function commandService(options: CommandServiceOptions): CommandService {
  const { registry } = options
  if (registry === undefined) throw invalidOptions('commandService', ['registry is required'])
  const topics = commandServiceTopics(registry)
  const deadLetterTopic = options.deadLetterTopic ?? ((topic: string) => `${topic}.dlq`)
  const handlerStores: Record<string, StoreSpec> = {}
  for (const name of registry.stores) handlerStores[name] = options.stores?.[name] ?? { keySerde: 'string', valueSerde: 'msgpack' }
  const dedupeFactory = dedupe({ ...(options.dedupeRetentionMs === undefined ? {} : { retentionMs: options.dedupeRetentionMs }), idOf: retryAwareId })
  const routerFactory = commandRouter({
    registry,
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    outOfOrder: { ...options.outOfOrder, schedulerTopic: topics.scheduler },
    ...(options.sleep === undefined ? {} : { sleep: options.sleep }),
    ...(options.faults === undefined ? {} : { faults: options.faults }),
    ...(options.claimCheck === undefined ? {} : { claimCheck: options.claimCheck }),
    results: 'arbiter',
    registrations: 'arbiter',
  })
  const arbiterFactory = deadlineArbiter(options.decisionRetentionMs === undefined ? {} : { retentionMs: options.decisionRetentionMs })
  const schedulerFactory = scheduler(options.rememberDeliveredMs === undefined ? {} : { rememberDeliveredMs: options.rememberDeliveredMs })
  const envelopeKey = { keySerde: 'string' as const, valueSerde: 'envelope' as const }
  const topology = defineTopology({
    sources: {
      commands: { topic: topics.commands, ...envelopeKey },
      deadlines: { topic: topics.deadlines, ...envelopeKey },
      schedule: { topic: topics.scheduler, keySerde: 'string', valueSerde: schedulerRequestSerde },
    },
    // Seen ids and decisions are the dedupe's and the arbiter's durable timers: no store of their own.
    stores: handlerStores,
    processors: {
      dedupe: { from: ['commands'], timers: true, use: dedupeFactory },
      router: { from: ['dedupe'], stores: [...registry.stores], use: routerFactory },
      arbiter: { from: ['deadlines', 'router'], timers: true, use: arbiterFactory },
      scheduler: { from: ['schedule'], timers: true, use: schedulerFactory },
    },
    sinks: {
      events: { from: ['router'], topic: topics.events, ...envelopeKey },
      'dead-letters': {
        from: ['router'],
        topic: (record: StreamRecord) => deadLetterTopic(record.headers.get('weir.origin.topic')?.toString() ?? topics.commands),
        ...envelopeKey,
      },
      retries: { from: ['router'], topic: topics.scheduler, keySerde: 'string', valueSerde: schedulerRequestSerde },
      outcomes: { from: ['arbiter'], topic: topics.outcomes, ...envelopeKey },
      late: { from: ['arbiter'], topic: topics.lateResults, ...envelopeKey },
      deliveries: {
        from: ['scheduler'],
        topic: (record: StreamRecord) => (record.value as { topic: string }).topic,
        keySerde: 'buffer',
        valueSerde: dueDeliverySerde,
      },
    },
  })
  return {
    topology,
    topics,
    metrics: { dedupe: dedupeFactory.metrics, router: routerFactory.metrics, arbiter: arbiterFactory.metrics, scheduler: schedulerFactory.metrics },
  }
}

/** A retried command keeps its id; its retry count makes it a new delivery for the dedupe store. */
function retryAwareId(record: StreamRecord): string | undefined {
  const envelope = record.value as Envelope | undefined
  if (envelope?.id === undefined) return undefined
  return envelope.retry?.count ? `${envelope.id}#${envelope.retry.count}` : envelope.id
}
