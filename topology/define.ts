// A declarative, validated, immutable description of a topology: sources -> processors -> sinks, plus stores.
import { WeirError } from '../core/errors.ts'
import { STORE_KINDS, isStoreKind } from '../state/store-kinds.ts'
import type { StoreKind } from '../state/store-kinds.ts'
import type { ProcessorFactory } from './processor.ts'
import type { StreamRecord } from './record.ts'
import { isSerdeSpec } from './serde.ts'
import type { SerdeSpec } from './serde.ts'

export interface SourceSpec {
  readonly topic: string
  readonly keySerde?: SerdeSpec
  readonly valueSerde?: SerdeSpec
}

export interface StoreSpec {
  /** 'rocksdb' (default) keeps state on disk; 'memory' rebuilds it from the changelog on every assignment (state/store-kinds.ts). */
  readonly backend?: StoreKind
  /** Back the store with a compacted changelog topic (default true; without it state is lost with the task). */
  readonly changelog?: boolean
  readonly keySerde?: SerdeSpec
  readonly valueSerde?: SerdeSpec
}

export interface ProcessorSpec {
  /** Parents: source or processor names. */
  readonly from: readonly string[]
  readonly use: ProcessorFactory
  /** Stores this processor may open with context.store(name). */
  readonly stores?: readonly string[]
  /** Give the processor durable timers (context.timers, delivered to onTimer). */
  readonly timers?: boolean
}

export interface SinkSpec {
  readonly from: readonly string[]
  /** A topic, or a function choosing the topic per record (e.g. delayed envelopes). */
  readonly topic: string | ((record: StreamRecord) => string)
  readonly keySerde?: SerdeSpec
  readonly valueSerde?: SerdeSpec
  /** Explicit partition per record; default: the key's hash (records without a key: the task's partition). */
  readonly partition?: (record: StreamRecord, task: { partition: number }) => number | undefined
}

export interface TopologyInput {
  readonly sources: Readonly<Record<string, SourceSpec>>
  readonly stores?: Readonly<Record<string, StoreSpec>>
  readonly processors?: Readonly<Record<string, ProcessorSpec>>
  readonly sinks?: Readonly<Record<string, SinkSpec>>
}

export interface Topology {
  readonly sources: Readonly<Record<string, SourceSpec>>
  /** Declared stores plus one `<processor>__timers` store per processor with timers. */
  readonly stores: Readonly<Record<string, Required<Pick<StoreSpec, 'backend' | 'changelog'>> & StoreSpec>>
  readonly processors: Readonly<Record<string, ProcessorSpec>>
  readonly sinks: Readonly<Record<string, SinkSpec>>
  /** Children of every source and processor, in declaration order. */
  readonly children: ReadonlyMap<string, readonly string[]>
  /** Processors ordered so that parents come before children. */
  readonly order: readonly string[]
  readonly sourceTopics: readonly string[]
  describe(): string
  mermaid(): string
}

export const TIMER_STORE_SUFFIX = '__timers'

export function timerStoreName(processor: string): string {
  return `${processor}${TIMER_STORE_SUFFIX}`
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

export function defineTopology(input: TopologyInput): Topology {
  const violations: string[] = []
  const sources = input.sources ?? {}
  const processors = input.processors ?? {}
  const sinks = input.sinks ?? {}
  const declaredStores = input.stores ?? {}
  const kinds = new Map<string, 'source' | 'processor' | 'sink'>()

  const claim = (name: string, kind: 'source' | 'processor' | 'sink') => {
    if (!NAME.test(name)) violations.push(`${kind} name ${JSON.stringify(name)} must match ${NAME}`)
    const previous = kinds.get(name)
    if (previous !== undefined) violations.push(`duplicate name ${name}: used by a ${previous} and a ${kind}`)
    else kinds.set(name, kind)
  }
  for (const name of Object.keys(sources)) claim(name, 'source')
  for (const name of Object.keys(processors)) claim(name, 'processor')
  for (const name of Object.keys(sinks)) claim(name, 'sink')
  if (Object.keys(sources).length === 0) violations.push('a topology needs at least one source')

  const topics = new Map<string, string>()
  for (const [name, source] of Object.entries(sources)) {
    if (typeof source?.topic !== 'string' || source.topic.length === 0) violations.push(`source ${name}: topic must be a non-empty string`)
    else if (topics.has(source.topic)) violations.push(`sources ${topics.get(source.topic)} and ${name} read the same topic ${source.topic}`)
    else topics.set(source.topic, name)
    checkSerdes(`source ${name}`, source, violations)
  }

  const stores: Record<string, Required<Pick<StoreSpec, 'backend' | 'changelog'>> & StoreSpec> = {}
  for (const [name, spec] of Object.entries(declaredStores)) {
    if (!NAME.test(name)) violations.push(`store name ${JSON.stringify(name)} must match ${NAME}`)
    if (name.endsWith(TIMER_STORE_SUFFIX)) violations.push(`store ${name}: names ending in ${TIMER_STORE_SUFFIX} are reserved for timers`)
    if (spec.backend !== undefined && !isStoreKind(spec.backend)) {
      violations.push(`store ${name}: backend must be ${Object.keys(STORE_KINDS).map((kind) => `'${kind}'`).join(' or ')}`)
    }
    checkSerdes(`store ${name}`, spec, violations)
    stores[name] = Object.freeze({ ...spec, backend: spec.backend ?? 'rocksdb', changelog: spec.changelog ?? true })
  }

  const parentsOf = (owner: string, from: readonly string[] | undefined) => {
    if (!Array.isArray(from) || from.length === 0) {
      violations.push(`${owner} has no input (from is empty)`)
      return
    }
    for (const parent of from) {
      const kind = kinds.get(parent)
      if (kind === undefined) violations.push(`${owner}: unknown parent ${parent}`)
      else if (kind === 'sink') violations.push(`${owner}: a sink (${parent}) cannot be a parent`)
    }
  }
  for (const [name, spec] of Object.entries(processors)) {
    parentsOf(`processor ${name}`, spec.from)
    if (typeof spec.use !== 'function') violations.push(`processor ${name}: use must be a factory function returning a processor`)
    for (const store of spec.stores ?? []) {
      if (declaredStores[store] === undefined) violations.push(`processor ${name}: unknown store ${store}`)
    }
    if (spec.timers === true) stores[timerStoreName(name)] = Object.freeze({ backend: 'rocksdb', changelog: true })
  }
  for (const [name, spec] of Object.entries(sinks)) {
    parentsOf(`sink ${name}`, spec.from)
    if (typeof spec.topic !== 'function' && (typeof spec.topic !== 'string' || spec.topic.length === 0)) {
      violations.push(`sink ${name}: topic must be a non-empty string or a function`)
    }
    checkSerdes(`sink ${name}`, spec, violations)
  }

  const children = new Map<string, string[]>()
  for (const name of [...Object.keys(sources), ...Object.keys(processors)]) children.set(name, [])
  for (const [name, spec] of [...Object.entries(processors), ...Object.entries(sinks)]) {
    for (const parent of spec.from ?? []) children.get(parent)?.push(name)
  }
  const order = topologicalOrder(processors, violations)
  if (violations.length > 0) {
    throw new WeirError('WEIR_ERR_TOPOLOGY_INVALID', `invalid topology: ${violations.join('; ')}`, { details: { violations } })
  }

  const topology: Topology = {
    sources: Object.freeze({ ...sources }),
    stores: Object.freeze(stores),
    processors: Object.freeze({ ...processors }),
    sinks: Object.freeze({ ...sinks }),
    children: new Map([...children].map(([k, v]) => [k, Object.freeze(v)])),
    order: Object.freeze(order),
    sourceTopics: Object.freeze(Object.values(sources).map((s) => s.topic)),
    describe: () => describeText(topology),
    mermaid: () => describeMermaid(topology),
  }
  return Object.freeze(topology)
}

function checkSerdes(owner: string, spec: { keySerde?: unknown; valueSerde?: unknown }, violations: string[]): void {
  for (const key of ['keySerde', 'valueSerde'] as const) {
    if (spec[key] !== undefined && !isSerdeSpec(spec[key])) violations.push(`${owner}: ${key} must be a serde name or {serialize, deserialize}`)
  }
}

function topologicalOrder(processors: Readonly<Record<string, ProcessorSpec>>, violations: string[]): string[] {
  const order: string[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (name: string, path: string[]) => {
    if (state.get(name) === 'done') return
    if (state.get(name) === 'visiting') {
      violations.push(`cycle: ${[...path.slice(path.indexOf(name)), name].join(' -> ')}`)
      return
    }
    state.set(name, 'visiting')
    for (const parent of processors[name]?.from ?? []) if (processors[parent] !== undefined) visit(parent, [...path, name])
    state.set(name, 'done')
    order.push(name)
  }
  for (const name of Object.keys(processors)) visit(name, [])
  return order
}

function topicLabel(topic: SinkSpec['topic']): string {
  return typeof topic === 'function' ? '(chosen per record)' : topic
}

function describeText(t: Topology): string {
  const lines: string[] = ['Sources:']
  for (const [name, source] of Object.entries(t.sources)) lines.push(`  ${name} (topic: ${source.topic}) --> ${(t.children.get(name) ?? []).join(', ') || 'none'}`)
  lines.push('Processors:')
  for (const name of t.order) {
    const spec = t.processors[name] as ProcessorSpec
    const stores = [...(spec.stores ?? []), ...(spec.timers ? [timerStoreName(name)] : [])]
    lines.push(
      `  ${name}${stores.length ? ` (stores: ${stores.join(', ')})` : ''} <-- ${spec.from.join(', ')} --> ${(t.children.get(name) ?? []).join(', ') || 'none'}`,
    )
  }
  lines.push('Sinks:')
  for (const [name, sink] of Object.entries(t.sinks)) lines.push(`  ${name} (topic: ${topicLabel(sink.topic)}) <-- ${sink.from.join(', ')}`)
  lines.push('Stores:')
  for (const [name, store] of Object.entries(t.stores)) lines.push(`  ${name} (${store.backend}${store.changelog ? ', changelog' : ''})`)
  return `${lines.join('\n')}\n`
}

function describeMermaid(t: Topology): string {
  const id = (kind: string, name: string) => `${kind}_${name.replace(/[^A-Za-z0-9_]/g, '_')}`
  const lines = ['graph LR']
  for (const [name, source] of Object.entries(t.sources)) lines.push(`  ${id('src', name)}[/"${name}<br/>${source.topic}"/]`)
  for (const name of t.order) lines.push(`  ${id('proc', name)}["${name}"]`)
  for (const [name, sink] of Object.entries(t.sinks)) lines.push(`  ${id('sink', name)}[\\"${name}<br/>${topicLabel(sink.topic)}"\\]`)
  for (const name of Object.keys(t.stores)) lines.push(`  ${id('store', name)}[("${name}")]`)
  const nodeId = (name: string) =>
    t.sources[name] !== undefined ? id('src', name) : t.processors[name] !== undefined ? id('proc', name) : id('sink', name)
  for (const [parent, kids] of t.children) for (const child of kids) lines.push(`  ${nodeId(parent)} --> ${nodeId(child)}`)
  for (const name of t.order) {
    const spec = t.processors[name] as ProcessorSpec
    for (const store of [...(spec.stores ?? []), ...(spec.timers ? [timerStoreName(name)] : [])]) {
      lines.push(`  ${id('proc', name)} -.- ${id('store', store)}`)
    }
  }
  return `${lines.join('\n')}\n`
}
