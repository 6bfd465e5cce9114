// The command catalog: which commands exist, where they go and what their payload must look like.
// The routing processor builds it from its handler registry (`describe()`); the gateway validates socket
// commands against it before anything reaches Kafka; client and docs generators read it.
import { Ajv } from 'ajv'
import type { ErrorObject, ValidateFunction } from 'ajv'

import { WeirError, invalidOptions } from '../core/errors.ts'

/** A JSON Schema (draft 2020-12 subset understood by ajv) for a command payload. */
export type JsonSchema = Readonly<Record<string, unknown>>

export interface CommandSpec {
  /** Alias of the Kafka topic the command is produced to (first segment of the path). */
  readonly topicAlias: string
  /** Context path (middle segments; may contain '/', may be empty). */
  readonly contextPath: string
  /** Command alias (last segment). */
  readonly alias: string
  readonly payloadSchema: JsonSchema
  /** Payload field whose value keys the Kafka record (ordering per entity); default: the requestId. */
  readonly keyField?: string
  /** TTL applied when the client gives none, and the largest TTL a client may ask for (ms). */
  readonly defaultTtlMs?: number
  readonly maxTtlMs?: number
  /** Claims needed to send it: the token's `roles` must include one of these (empty or absent: any authenticated subject). */
  readonly roles?: readonly string[]
  readonly description?: string
}

export interface TopicBinding {
  /** Kafka topic behind a topic alias. */
  readonly commands: string
  /** Where command results of this alias are produced. */
  readonly results: string
  /** Where events of this alias are produced (broadcast to subscribers). */
  readonly events: string
  /** Where the gateway registers command deadlines for the deadline arbiter (default `<commands>.deadlines`). */
  readonly deadlines?: string
}

export function deadlinesTopic(binding: TopicBinding): string {
  return binding.deadlines ?? `${binding.commands}.deadlines`
}

/** Who subscribes: the verified token of the socket. */
export interface StreamSubscriber {
  readonly subject: string
  readonly roles: readonly string[]
  /** Every claim of the verified token. */
  readonly claims: Readonly<Record<string, unknown>>
}

/** Who may subscribe to a topic alias's events, and what its event frames carry. */
export interface EventStreamSpec {
  /** The token's `roles` must include one of these (empty or absent: no role needed). */
  readonly roles?: readonly string[]
  /**
   * A rule over the subscriber's token (code catalogs only: a JSON catalog cannot hold a function); it must
   * return true. With `roles`, both must pass.
   */
  readonly allow?: (subscriber: StreamSubscriber) => boolean
  /**
   * An internal stream (services, operators): every subscriber's event frames keep the trace context
   * (`traceparent`). Otherwise only the sockets of the session whose command caused the event get it.
   */
  readonly internal?: boolean
  readonly description?: string
}

export interface CommandCatalogDescription {
  readonly topics: Readonly<Record<string, TopicBinding>>
  readonly commands: readonly CommandSpec[]
  /**
   * Access rules per topic alias (a key of `topics`) for event subscriptions. An alias not listed here is
   * public: every authenticated subject may subscribe to it.
   */
  readonly eventStreams?: Readonly<Record<string, EventStreamSpec>>
}

export type PayloadCheck = { ok: true } | { ok: false; violations: string[] }

export interface CommandCatalog extends CommandCatalogDescription {
  /** The command addressed by `topicAlias/contextPath/commandAlias`, or undefined. */
  find(path: string): CommandSpec | undefined
  /** Validates a payload against the command's schema. */
  check(spec: CommandSpec, payload: unknown): PayloadCheck
  topicOf(spec: CommandSpec): TopicBinding
  /** The access rule of a topic alias's events (undefined: public to authenticated subjects). */
  eventStream(topicAlias: string): EventStreamSpec | undefined
  /** Whether `subscriber` may subscribe to the events of `topicAlias` (an `allow` rule that throws propagates). */
  maySubscribe(topicAlias: string, subscriber: StreamSubscriber): boolean
}

export function commandPath(spec: Pick<CommandSpec, 'topicAlias' | 'contextPath' | 'alias'>): string {
  return [spec.topicAlias, spec.contextPath, spec.alias].filter((s) => s.length > 0).join('/')
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

export function createCommandCatalog(description: CommandCatalogDescription): CommandCatalog {
  const violations: string[] = []
  const byPath = new Map<string, CommandSpec>()
  const ajv = new Ajv({ allErrors: true, strict: false })
  const validators = new Map<string, ValidateFunction>()
  for (const [alias, binding] of Object.entries(description.topics ?? {})) {
    if (!SEGMENT.test(alias)) violations.push(`topic alias ${JSON.stringify(alias)} must be a plain path segment`)
    for (const key of ['commands', 'results', 'events'] as const) {
      if (typeof binding?.[key] !== 'string' || binding[key].length === 0) violations.push(`topics.${alias}.${key} must name a Kafka topic`)
    }
  }
  for (const spec of description.commands ?? []) {
    const path = commandPath(spec)
    if (!SEGMENT.test(spec.topicAlias ?? '')) violations.push(`${path}: topicAlias must be a plain path segment`)
    if (!SEGMENT.test(spec.alias ?? '')) violations.push(`${path}: alias must be a plain path segment`)
    if (typeof spec.contextPath !== 'string' || (spec.contextPath !== '' && !spec.contextPath.split('/').every((s) => SEGMENT.test(s)))) {
      violations.push(`${path}: contextPath must be empty or segments joined by '/'`)
    }
    if (description.topics?.[spec.topicAlias] === undefined) violations.push(`${path}: topic alias ${spec.topicAlias} is not in topics`)
    if (byPath.has(path)) violations.push(`${path}: declared twice`)
    for (const key of ['defaultTtlMs', 'maxTtlMs'] as const) {
      const value = spec[key]
      if (value !== undefined && !(Number.isInteger(value) && value > 0)) violations.push(`${path}: ${key} must be a positive integer`)
    }
    try {
      validators.set(path, ajv.compile(spec.payloadSchema as Record<string, unknown>))
    } catch (error) {
      violations.push(`${path}: payloadSchema does not compile: ${(error as Error).message}`)
    }
    byPath.set(path, Object.freeze({ ...spec }))
  }
  const streams = new Map<string, EventStreamSpec>()
  for (const [alias, stream] of Object.entries(description.eventStreams ?? {})) {
    if (description.topics?.[alias] === undefined) violations.push(`eventStreams.${alias}: topic alias ${alias} is not in topics`)
    if (typeof stream !== 'object' || stream === null) {
      violations.push(`eventStreams.${alias} must be an object ({ roles?, allow?, internal? })`)
      continue
    }
    if (stream.roles !== undefined && !(Array.isArray(stream.roles) && stream.roles.every((r) => typeof r === 'string' && r.length > 0))) {
      violations.push(`eventStreams.${alias}.roles must be an array of non-empty strings`)
    }
    if (stream.allow !== undefined && typeof stream.allow !== 'function') violations.push(`eventStreams.${alias}.allow must be a function`)
    if (stream.internal !== undefined && typeof stream.internal !== 'boolean') violations.push(`eventStreams.${alias}.internal must be a boolean`)
    streams.set(alias, Object.freeze({ ...stream, ...(stream.roles === undefined ? {} : { roles: Object.freeze([...stream.roles]) }) }))
  }
  if (violations.length > 0) throw invalidOptions('CommandCatalog', violations)

  return Object.freeze({
    topics: Object.freeze({ ...description.topics }),
    commands: Object.freeze([...byPath.values()]),
    ...(description.eventStreams === undefined ? {} : { eventStreams: Object.freeze(Object.fromEntries(streams)) }),
    find: (path: string) => byPath.get(path.replace(/^\/+|\/+$/g, '')),
    check(spec: CommandSpec, payload: unknown): PayloadCheck {
      const validate = validators.get(commandPath(spec))
      if (validate === undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `${commandPath(spec)} is not in this catalog`)
      return validate(payload) ? { ok: true } : { ok: false, violations: formatAjvErrors(validate.errors) }
    },
    topicOf(spec: CommandSpec): TopicBinding {
      const binding = description.topics[spec.topicAlias]
      if (binding === undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `topic alias ${spec.topicAlias} is not in this catalog`)
      return binding
    },
    eventStream: (topicAlias: string) => streams.get(topicAlias),
    maySubscribe(topicAlias: string, subscriber: StreamSubscriber): boolean {
      const stream = streams.get(topicAlias)
      if (stream === undefined) return true
      const roles = stream.roles ?? []
      if (roles.length > 0 && !roles.some((role) => subscriber.roles.includes(role))) return false
      return stream.allow === undefined || stream.allow(subscriber) === true
    },
  })
}

function formatAjvErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`)
}
