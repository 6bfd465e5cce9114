// Fault injection around any processor of a topology (docs/faults.md, "Any processor"): rules matched by the
// processor's name and the record's source topic. What a fault does follows from what a processor is: it has no
// retries (a thrown error meets the runtime's error policy), no result (a drop loses what it forwards), and no
// dedupe of its own (a duplicate is the record processed twice, which the processor must be idempotent for).
import { AsyncLocalStorage } from 'node:async_hooks'

import { WeirError } from '../../core/errors.ts'
import type { Processor, ProcessorContext, ProcessorFactory } from '../../topology/processor.ts'
import type { StreamRecord } from '../../topology/record.ts'
import { FAULT_HEADER, faultMark } from './injector.ts'
import type { FaultInjector } from './injector.ts'
import { rollFault } from './rules.ts'
import type { FaultPoint, FaultRule } from './rules.ts'

export interface ProcessorFaultOptions {
  /** How a delay waits (tests replace it). */
  sleep?: (ms: number) => Promise<void>
}

/**
 * The factory's processors with faults injected into `process` (not into timers or punctuations). Without an
 * active injector a record goes straight to the processor. Rolls are keyed by the record's topic, partition and
 * offset, so a seeded rule decides a record the same way each time it is processed.
 */
export function withFaults<K, V>(factory: ProcessorFactory<K, V>, injector: FaultInjector, options: ProcessorFaultOptions = {}): ProcessorFactory<K, V> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  return (): Processor<K, V> => {
    const inner = factory()
    let context: ProcessorContext
    // What the record in hand was injected, per record: with maxInFlight above 1 a task processes several at once,
    // and each forward must see its own record's faults.
    const inHand = new AsyncLocalStorage<{ mark: string; drop: boolean }>()
    const forward = async (record: StreamRecord, child?: string) => {
      const current = inHand.getStore()
      if (current?.drop === true) return
      await context.forward(current === undefined ? record : record.withHeaders({ [FAULT_HEADER]: current.mark }), child)
    }
    return {
      async init(given) {
        context = given
        await inner.init?.(delegate(given, forward))
      },
      // Not async: without an active injector the record goes to the processor with no extra promise.
      process(record) {
        return injector.active ? faulty(record) : inner.process(record)
      },
      ...(inner.onTimer === undefined ? {} : { onTimer: (timer) => inner.onTimer?.(timer) }),
      ...(inner.close === undefined ? {} : { close: () => inner.close?.() }),
    }

    async function faulty(record: StreamRecord<K, V>): Promise<void> {
      const metadata = context.recordMetadata()
      const point: FaultPoint = { processor: context.processorName, ...(metadata === undefined ? {} : { topic: metadata.topic }) }
      const rules = injector.matching(point)
      if (rules.length === 0) return inner.process(record)
      const key = metadata === undefined ? `${String(record.key)}@${record.timestamp}` : `${metadata.topic}:${metadata.partition}:${metadata.offset}`
      const injected: FaultRule[] = []
      const hit = (rule: FaultRule) => {
        if (!rollFault(rule, key)) return false
        injector.injected(rule, point)
        injected.push(rule)
        return true
      }
      const of = (kind: FaultRule['kind']) => rules.filter((rule) => rule.kind === kind)
      for (const rule of of('delay')) if (hit(rule)) await sleep(rule.delayMs ?? 0)
      const error = of('error').find(hit)
      if (error !== undefined) {
        const message = `fault injected by rule ${error.id} into processor ${point.processor}`
        throw new WeirError(error.retriable === true ? 'WEIR_ERR_FAULT_INJECTED' : 'WEIR_ERR_NON_RETRIABLE', message, { details: { fault: `error:${error.id}` } })
      }
      const corrupt = of('corrupt').some(hit)
      const drop = of('drop').some(hit)
      const duplicate = of('duplicate').some(hit)
      const input = corrupt ? (record.withValue(Buffer.from(JSON.stringify(record.value) ?? 'null').map((b) => b ^ 0xa5)) as unknown as StreamRecord<K, V>) : record
      const run = async () => {
        await inner.process(input)
        if (duplicate) await inner.process(input)
      }
      if (injected.length === 0) await run()
      else await inHand.run({ mark: faultMark(injected), drop }, run)
    }
  }
}

/** The processor's own context with `forward` replaced (every other member the runtime's, read through). */
function delegate(context: ProcessorContext, forward: ProcessorContext['forward']): ProcessorContext {
  return {
    get applicationId() {
      return context.applicationId
    },
    get taskId() {
      return context.taskId
    },
    get partition() {
      return context.partition
    },
    get processorName() {
      return context.processorName
    },
    get timers() {
      return context.timers
    },
    forward,
    store: (name) => context.store(name),
    schedule: (intervalMs, type, callback) => context.schedule(intervalMs, type, callback),
    recordMetadata: () => context.recordMetadata(),
    commit: () => context.commit(),
    now: () => context.now(),
  }
}
