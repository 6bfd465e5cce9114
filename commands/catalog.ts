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

export interface CommandCatalogDescription {
  readonly topics: Readonly<Record<string, TopicBinding>>
  readonly commands: readonly CommandSpec[]
}

export type PayloadCheck = { ok: true } | { ok: false; violations: string[] }

export interface CommandCatalog extends CommandCatalogDescription {
  /** The command addressed by `topicAlias/contextPath/commandAlias`, or undefined. */
  find(path: string): CommandSpec | undefined
  /** Validates a payload against the command's schema. */
  check(spec: CommandSpec, payload: unknown): PayloadCheck
  topicOf(spec: CommandSpec): TopicBinding
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
  if (violations.length > 0) throw invalidOptions('CommandCatalog', violations)

  return Object.freeze({
    topics: Object.freeze({ ...description.topics }),
    commands: Object.freeze([...byPath.values()]),
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
  })
}

function formatAjvErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`)
}
