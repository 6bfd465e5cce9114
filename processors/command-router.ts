// Reusable generic commands: handlers registered by (context path, command alias) with a payload schema.
// The router validates each command, runs its handler with in-order retries, and forwards
//   - the CommandResult (a follow-up of the command) to the child 'results' (or the one options.results names),
//   - with options.registrations, the command itself (its deadline registration) before it runs,
//   - events the handler emitted (follow-ups) to 'events',
//   - dead letters (unknown command, schema violation, expired, non-retriable, retries exhausted) to 'dead-letters',
//   - out-of-order retries (a schedule request for the delayed-envelope scheduler) to 'retries'.
// Nothing a failed attempt wrote or emitted survives it: store writes and events are held per attempt.
import { WeirError, invalidOptions, isWeirError } from '../core/errors.ts'
import type { ErrorCode } from '../core/errors.ts'
import { createCommandCatalog, commandPath } from '../commands/catalog.ts'
import type { CommandCatalog, CommandSpec, TopicBinding } from '../commands/catalog.ts'
import { isBadReference } from '../blobs/claim-check.ts'
import type { ClaimCheck } from '../blobs/claim-check.ts'
import { encodeEnvelope } from '../envelope/codec.ts'
import { followUp } from '../envelope/envelope.ts'
import type { Actor, Envelope, FollowUpInput } from '../envelope/envelope.ts'
import type { KeyValueEntry, KeyValueStore, Processor, ProcessorContext, ProcessorFactory, RangeQuery } from '../topology/processor.ts'
import { StreamRecord } from '../topology/record.ts'
import { deadLetterHeaders } from '../topology/dead-letter.ts'
import { commandFaults } from './faults/command-faults.ts'
import type { CommandFaults } from './faults/command-faults.ts'
import { FAULT_HEADER } from './faults/injector.ts'
import type { FaultInjector } from './faults/injector.ts'
import { backoffDelay, resolveRetryPolicy } from './retry.ts'
import type { OutOfOrderPolicy, RetryPolicy } from './retry.ts'
import type { ScheduleRequest } from './scheduler.ts'

/** Thrown by a handler for a failure that retrying cannot fix (bad business input, forbidden state). */
export class NonRetriableError extends WeirError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('WEIR_ERR_NON_RETRIABLE', message, options)
    this.name = 'NonRetriableError'
  }
}

export interface CommandContext<P> {
  readonly payload: P
  readonly command: Envelope<P>
  /**
   * Who sent the command: the subject and roles of the token the gateway authenticated (the envelope's
   * `actor`), for checks such as "is this the owner of the entity". Undefined for commands that did not come
   * through the gateway (a service or script that wrote no actor).
   */
  readonly actor: Actor | undefined
  /** 1 for the first attempt. */
  readonly attempt: number
  /** A store the handler declared; writes are kept only if this attempt succeeds. */
  store<K = string, V = unknown>(name: string): KeyValueStore<K, V>
  /** Emits an event (a follow-up of the command) to the events topic, if this attempt succeeds. */
  emit(alias: string, payload: unknown, options?: { contextPath?: string }): void
  /** A follow-up of the command, for handlers that need to build messages themselves. */
  followUp<T>(input: FollowUpInput<T>): Envelope<T>
  now(): number
}

export interface CommandHandler<P = never, R = unknown> extends Omit<CommandSpec, 'topicAlias'> {
  /** Stores the handler uses (declared in the service's stores). */
  readonly stores?: readonly string[]
  /** Overrides the router's in-order retry policy for this command. */
  readonly retry?: Partial<RetryPolicy>
  handle(context: CommandContext<P>): R | Promise<R>
}

export interface CommandRegistry {
  readonly topicAlias: string
  readonly topics: TopicBinding
  readonly catalog: CommandCatalog
  find(contextPath: string, alias: string): CommandHandler<never, unknown> | undefined
  /** Every store some handler uses. */
  readonly stores: readonly string[]
}

// Handlers are stored with their payload types erased; the schema check guards what reaches them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandler = CommandHandler<any, unknown>

export function createCommandRegistry(options: { topicAlias: string; topics: TopicBinding; handlers: readonly AnyHandler[] }): CommandRegistry {
  const catalog = createCommandCatalog({
    topics: { [options.topicAlias]: options.topics },
    commands: options.handlers.map(({ handle: _handle, stores: _stores, retry: _retry, ...spec }) => ({ ...spec, topicAlias: options.topicAlias })),
  })
  const byKey = new Map<string, AnyHandler>()
  for (const handler of options.handlers) byKey.set(`${handler.contextPath}\u0000${handler.alias}`, handler)
  return Object.freeze({
    topicAlias: options.topicAlias,
    topics: options.topics,
    catalog,
    find: (contextPath: string, alias: string) => byKey.get(`${contextPath}\u0000${alias}`) as CommandHandler<never, unknown> | undefined,
    stores: [...new Set(options.handlers.flatMap((h) => h.stores ?? []))],
  })
}

export interface CommandRouterOptions {
  registry: CommandRegistry
  /** In-order retries for handler errors other than NonRetriableError (default 3 attempts, 50 ms base). */
  retry?: Partial<RetryPolicy>
  /** Out-of-order retries for commands flagged `retry.outOfOrder` (through the scheduler topic). */
  outOfOrder?: Partial<OutOfOrderPolicy> & { schedulerTopic: string }
  /** Waits between in-order attempts (tests replace it). */
  sleep?: (ms: number) => Promise<void>
  /** Child that receives command results (default 'results': a sink, or a processor such as the deadline arbiter). */
  results?: string
  /**
   * Child that receives each command that has a deadline before it runs (its deadline registration, as the
   * gateway also writes it), so a deadline arbiter in the same task knows the deadline before the result comes,
   * even when the gateway's registration is still queued (default: none).
   */
  registrations?: string
  /** Fault injection (docs/faults.md): injects nothing until armed; without it the router has no fault code path. */
  faults?: FaultInjector
  /**
   * Large payloads by reference (docs/payloads.md): a command's `payloadRef` is resolved (fetched and verified)
   * just before its schema check, and results and events over the threshold are written as blobs before they are
   * forwarded. Without it, a command carrying a reference gets WEIR_ERR_BLOB_FOREIGN.
   */
  claimCheck?: ClaimCheck
}

export interface CommandRouterMetrics {
  handled: number
  failed: number
  unknown: number
  invalid: number
  expired: number
  retries: number
  outOfOrderRetries: number
  /** Commands refused for their payload reference (missing, tampered or foreign blob). */
  badReferences: number
}

export type CommandRouterFactory = ProcessorFactory & { readonly metrics: CommandRouterMetrics }

export function commandRouter(options: CommandRouterOptions): CommandRouterFactory {
  if (options.registry === undefined) throw invalidOptions('commandRouter', ['registry is required'])
  const policy = resolveRetryPolicy(options.retry)
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  const metrics: CommandRouterMetrics = { handled: 0, failed: 0, unknown: 0, invalid: 0, expired: 0, retries: 0, outOfOrderRetries: 0, badReferences: 0 }
  const resultsChild = options.results ?? 'results'
  const outOfOrder = options.outOfOrder === undefined ? undefined : { ...resolveRetryPolicy({ attempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000, jitter: 'none', ...options.outOfOrder }), schedulerTopic: options.outOfOrder.schedulerTopic }

  const injector = options.faults
  const factory = (): Processor<unknown, Envelope> => {
    let context: ProcessorContext
    // A record marked with the faults injected into its command (`weir.fault`), if any.
    const marked = (key: unknown, value: Envelope, timestamp: number, faults: CommandFaults | undefined) => {
      const mark = faults?.header()
      return new StreamRecord(key, value, timestamp, mark === undefined ? undefined : new Map([[FAULT_HEADER, Buffer.from(mark)]]))
    }

    const errorResult = (command: Envelope, code: ErrorCode, message: string, details: Record<string, unknown> = {}) =>
      followUp(command, { kind: 'result', alias: command.alias, status: 'error', payload: { code, message, ...details }, now: context.now() })

    async function deadLetter(record: StreamRecord<unknown, Envelope>, error: WeirError, attempts: number, faults?: CommandFaults) {
      const origin = context.recordMetadata()
      const headers = deadLetterHeaders(error, {
        topic: origin?.topic ?? 'unknown',
        partition: origin?.partition ?? context.partition,
        offset: origin?.offset ?? -1n,
        timestamp: BigInt(origin?.timestamp ?? record.timestamp),
        ...(origin === undefined ? {} : { headers: origin.headers }),
        processor: context.processorName,
        attempts,
      })
      // The dead letter's headers are exactly deadLetterHeaders' set (the record's own weir.* headers are not
      // carried over), the same whoever writes it, plus weir.fault when a fault was injected into the command;
      // the task makes it fit its topic (fitDeadLetter).
      const mark = faults?.header()
      const all = mark === undefined ? headers : { ...headers, [FAULT_HEADER]: mark }
      await context.forward(new StreamRecord(record.key, record.value, record.timestamp, new Map(Object.entries(all).map(([name, value]) => [name, Buffer.from(value)]))), 'dead-letters')
    }

    async function reject(record: StreamRecord<unknown, Envelope>, code: ErrorCode, message: string, details: Record<string, unknown>, attempts: number, faults?: CommandFaults) {
      const command = record.value
      await context.forward(marked(command.requestId, errorResult(command, code, message, details), record.timestamp, faults), resultsChild)
      await deadLetter(record, new WeirError(code, message, { details }), attempts, faults)
    }

    // A duplicate fault: the command once more on its own topic, through the scheduler, due now: a second
    // delivery of the same envelope, which the dedupe store must drop.
    async function redeliver(record: StreamRecord<unknown, Envelope>, rule: string) {
      if (outOfOrder === undefined) return
      const command = record.value
      const request: ScheduleRequest = {
        op: 'schedule',
        id: `fault-duplicate:${command.id}:${command.retry?.count ?? 0}`,
        deliverAt: context.now(),
        topic: context.recordMetadata()?.topic ?? options.registry.topics.commands,
        key: Buffer.from(String(record.key ?? command.requestId)),
        value: encodeEnvelope(command),
        headers: { [FAULT_HEADER]: `duplicate:${rule}` },
      }
      await context.forward(new StreamRecord(request.id, request, record.timestamp), 'retries')
    }

    return {
      init(c) {
        context = c
      },
      async process(input: StreamRecord<unknown, Envelope>) {
        let record = input
        const received = record.value
        let command = received
        let faults: CommandFaults | undefined
        if (command.kind !== 'command') {
          await deadLetter(record, new WeirError('WEIR_ERR_UNKNOWN_COMMAND', `expected a command, got a ${command.kind}`), 0)
          return
        }
        if (options.registrations !== undefined && received.deadline !== undefined) {
          await context.forward(new StreamRecord(received.requestId, received, record.timestamp), options.registrations)
        }
        const handler = options.registry.find(received.contextPath, received.alias)
        const path = commandPath({ topicAlias: options.registry.topicAlias, contextPath: received.contextPath, alias: received.alias })
        if (handler === undefined) {
          metrics.unknown++
          await reject(record, 'WEIR_ERR_UNKNOWN_COMMAND', `no handler for ${path}`, { path }, 0)
          return
        }
        // The payload by reference is fetched only for a command that will run (lazily); a bad reference is the
        // command's error result and a dead letter that keeps the reference (record.value), so nothing is lost.
        if (received.payloadRef !== undefined) {
          try {
            if (options.claimCheck === undefined) throw new WeirError('WEIR_ERR_BLOB_FOREIGN', `${path} carries a payload reference, and this service has no blob store`, { details: { ref: received.payloadRef } })
            command = await options.claimCheck.resolve(received)
          } catch (error) {
            if (!isBadReference(error)) throw error
            metrics.badReferences++
            await reject(record, error.code, error.message, { ...error.details }, 0)
            return
          }
        }
        const offload = (envelope: Envelope) => (options.claimCheck === undefined ? Promise.resolve(envelope) : options.claimCheck.offload(envelope))
        // What an out-of-order retry reschedules: the envelope as received (a payload by reference stays a
        // reference in the scheduler topic), or as a corrupt fault left it.
        let asReceived = received
        if (injector?.active === true) {
          faults = commandFaults(injector, { path, processor: context.processorName, ...(context.recordMetadata()?.topic === undefined ? {} : { topic: context.recordMetadata()?.topic }) }, command)
          // Without the out-of-order wiring there is no way to redeliver: the rule is not rolled (nor counted).
          const duplicate = outOfOrder === undefined ? undefined : faults?.duplicate()
          if (duplicate !== undefined) await redeliver(input, duplicate.id)
          const corrupted = faults?.corrupt(command)
          if (corrupted !== undefined) {
            command = corrupted
            asReceived = corrupted
            record = record.withValue(corrupted)
          }
        }
        const check = options.registry.catalog.check({ ...handler, topicAlias: options.registry.topicAlias }, command.payload)
        if (!check.ok) {
          metrics.invalid++
          await reject(record, 'WEIR_ERR_SCHEMA_VIOLATION', `payload of ${path} does not match its schema`, { violations: check.violations }, 0, faults)
          return
        }
        if (command.deadline !== undefined && context.now() > command.deadline) {
          // The client already has (or will get) the timeout from the deadline arbiter: do not execute.
          metrics.expired++
          await deadLetter(record, new WeirError('WEIR_ERR_COMMAND_EXPIRED', `${path} expired ${context.now() - command.deadline} ms before it was handled`), 0)
          return
        }
        const commandPolicy = handler.retry === undefined ? policy : resolveRetryPolicy({ ...policy, ...handler.retry })
        const started = context.now()
        for (let attempt = 1; ; attempt++) {
          const attemptRun = runAttempt(context, handler, command, attempt, new Set(handler.stores ?? []))
          try {
            await faults?.beforeAttempt(attempt, sleep)
            const result = await attemptRun.run()
            // A dropped output: the command stays consumed, and nothing the handler made (writes, result, events) survives.
            if (faults?.drop(attempt) === true) return
            await attemptRun.apply()
            metrics.handled++
            const resultEnvelope = await offload(followUp(command, { kind: 'result', alias: command.alias, status: 'ok', payload: result ?? null, now: context.now() }))
            await context.forward(marked(command.requestId, resultEnvelope, record.timestamp, faults), resultsChild)
            // Events keep the command's key (the entity), so one entity's events stay in order on one partition.
            const eventKey = record.key ?? command.requestId
            for (const event of attemptRun.events) await context.forward(marked(eventKey, await offload(event), record.timestamp, faults), 'events')
            return
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error)
            if (isWeirError(error, 'WEIR_ERR_NON_RETRIABLE')) {
              metrics.failed++
              await reject(record, 'WEIR_ERR_NON_RETRIABLE', message, { ...error.details }, attempt, faults)
              return
            }
            const elapsed = context.now() - started
            const delay = backoffDelay(commandPolicy, attempt)
            if (attempt < commandPolicy.attempts && elapsed + delay <= commandPolicy.maxTotalMs) {
              metrics.retries++
              await sleep(delay)
              continue
            }
            // In-order budget spent. Commands flagged for it get another chance later, out of order.
            const retry = command.retry
            if (outOfOrder !== undefined && retry?.outOfOrder === true && retry.count + 1 < outOfOrder.attempts) {
              metrics.outOfOrderRetries++
              // The envelope as received: a payload by reference stays a reference in the scheduler topic.
              const next: Envelope = { ...asReceived, retry: { outOfOrder: true, count: retry.count + 1 } }
              const origin = context.recordMetadata()
              const request: ScheduleRequest = {
                op: 'schedule',
                id: `retry:${command.id}:${retry.count + 1}`,
                deliverAt: context.now() + backoffDelay(outOfOrder, retry.count + 1),
                topic: origin?.topic ?? options.registry.topics.commands,
                // The command's own key: the retry lands on the entity's partition, in order with its other commands.
                key: Buffer.from(String(record.key ?? command.requestId)),
                value: encodeEnvelope(next),
              }
              await context.forward(new StreamRecord(request.id, request, record.timestamp), 'retries')
              return
            }
            metrics.failed++
            // Every attempt made: the in-order attempts of each earlier out-of-order delivery, plus this one's.
            const attempts = (retry?.outOfOrder === true ? retry.count * commandPolicy.attempts : 0) + attempt
            await reject(record, 'WEIR_ERR_RETRIES_EXHAUSTED', `${path} failed ${attempts} time(s): ${message}`, { attempts }, attempts, faults)
            return
          }
        }
      },
    }
  }
  return Object.assign(factory, { metrics })
}

interface AttemptRun {
  run(): Promise<unknown>
  /** Applies the attempt's store writes (after it succeeded). */
  apply(): Promise<void>
  readonly events: Envelope[]
}

type Write = { value: unknown } | { deleted: true }

function runAttempt(context: ProcessorContext, handler: CommandHandler<never, unknown>, command: Envelope, attempt: number, allowed: Set<string>): AttemptRun {
  const writes = new Map<string, Map<unknown, Write>>()
  const events: Envelope[] = []
  const overlayStore = (name: string): KeyValueStore<unknown, unknown> => {
    if (!allowed.has(name)) throw new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `command ${command.alias} did not declare store ${name}`)
    const base = context.store<unknown, unknown>(name)
    const local = writes.get(name) ?? new Map<unknown, Write>()
    writes.set(name, local)
    return {
      async get(key) {
        const write = local.get(key)
        if (write !== undefined) return 'deleted' in write ? undefined : write.value
        return base.get(key)
      },
      async put(key, value) {
        local.set(key, { value })
      },
      async delete(key) {
        local.set(key, { deleted: true })
      },
      // Scans see what was committed before this attempt (not the attempt's own writes).
      range: (query?: RangeQuery<unknown>): AsyncIterable<KeyValueEntry<unknown, unknown>> => base.range(query),
      prefix: (prefix: unknown) => base.prefix(prefix),
      approximateCount: () => base.approximateCount(),
    }
  }
  const commandContext: CommandContext<never> = {
    payload: command.payload as never,
    command: command as Envelope<never>,
    actor: command.actor,
    attempt,
    store: <K, V>(name: string) => overlayStore(name) as unknown as KeyValueStore<K, V>,
    emit(alias, payload, emitOptions = {}) {
      events.push(followUp(command, { kind: 'event', alias, payload, ...(emitOptions.contextPath === undefined ? {} : { contextPath: emitOptions.contextPath }), now: context.now() }))
    },
    followUp: (input) => followUp(command, input),
    now: () => context.now(),
  }
  return {
    events,
    run: async () => handler.handle(commandContext),
    async apply() {
      for (const [name, local] of writes) {
        const base = context.store<unknown, unknown>(name)
        for (const [key, write] of local) {
          if ('deleted' in write) await base.delete(key)
          else await base.put(key, write.value)
        }
      }
    },
  }
}
