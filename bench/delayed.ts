// Delayed delivery: N envelopes pending, due one after another over a window, delivered by a system under test
// to a destination topic. The bench process only loads the envelopes and watches the destination topic with a
// read_committed reader; every system runs in its own process(es), so the measurement does not share a thread
// with the work it measures.
//
// Each envelope's value is `<id>:<due ms>`; lateness = the moment the bench's reader sees it - due. Envelopes
// due before the system was ready (everything loaded and ingested) are left out of the lateness figures and
// counted apart. delivered/s = envelopes seen / (last seen - first due).
import type { KafkaAdmin, PartitionReader } from '../kafka/index.ts'
import { createPartitionReader } from '../kafka/index.ts'
import type { Progress } from '../scripts/infra/index.ts'
import { kafkaSecurity } from '../test/helpers/kafka.ts'

export interface DelayedScenario {
  /** Envelopes pending when the first one is due. */
  pending: number
  /** Window over which they come due (uniformly); offered rate = pending / window. */
  windowMs: number
  /** Time between the start of the run and the first due time: loading and ingestion happen before. */
  leadMs: number
}

export interface DelayedEnvelope {
  id: string
  deliverAt: number
  topic: string
  value: Buffer
}

/** A system under test: loads envelopes its own way, runs in its own process, says when it is ready. */
export interface DelayedSystem {
  readonly name: string
  /** Starts the system for one scenario; resolves once it runs. */
  start(context: DelayedRunContext): Promise<void>
  /** Loads the envelopes (produce to its request topic, or write to Redis, ...). */
  load(envelopes: readonly DelayedEnvelope[], context: DelayedRunContext): Promise<void>
  /** Resolves when every loaded envelope is held by the system (e.g. its consumer group committed them all). */
  ingested(context: DelayedRunContext): Promise<void>
  stop(): Promise<void>
  /** Figures the system reports about itself once everything is ingested (e.g. its heap while all is pending). */
  stats?(): Promise<Record<string, number>>
}

export interface DelayedRunContext {
  brokers: string[]
  admin: KafkaAdmin
  /** Unique per system and scenario. */
  runId: string
  destination: string
  pending: number
  progress: Progress
}

export interface DelayedResult {
  system: string
  pending: number
  offeredPerSecond: number
  deliveredPerSecond: number
  latenessP50Ms: number
  latenessP99Ms: number
  latenessMaxMs: number
  /** Envelopes seen, and how many of them were due before the system was ready (not in the lateness figures). */
  delivered: number
  dueBeforeReady: number
  duplicates: number
  missing: number
  ingestSeconds: number
  /** What the system reported about itself with everything pending (DelayedSystem.stats). */
  systemStats?: Record<string, number>
}

export function scenarioFor(pending: number, offeredPerSecond: number): DelayedScenario {
  const windowMs = Math.max(5000, Math.round((pending / offeredPerSecond) * 1000))
  // Loading and ingesting must finish before the first envelope is due; generous for slow machines.
  const leadMs = 15_000 + Math.round(pending / 8)
  return { pending, windowMs, leadMs }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

export async function runDelayed(system: DelayedSystem, scenario: DelayedScenario, context: Omit<DelayedRunContext, 'destination' | 'pending'>): Promise<DelayedResult> {
  const destination = `bench-${context.runId}.delivered`
  await context.admin.createTopics([{ name: destination, partitions: 1 }])
  const run: DelayedRunContext = { ...context, destination, pending: scenario.pending }
  const started = Date.now()
  const firstDue = started + scenario.leadMs
  const step = scenario.windowMs / scenario.pending
  const envelopes: DelayedEnvelope[] = []
  for (let i = 0; i < scenario.pending; i++) {
    const deliverAt = Math.round(firstDue + i * step)
    envelopes.push({ id: `e${i}`, deliverAt, topic: destination, value: Buffer.from(`e${i}:${deliverAt}`) })
  }
  const reader: PartitionReader = createPartitionReader({ ...kafkaSecurity(), brokers: context.brokers, isolation: 'read_committed', maxWaitMs: 5 })
  try {
    await system.start(run)
    context.progress.step(`  ${system.name}: loading ${scenario.pending.toLocaleString('en')} envelopes`)
    await system.load(envelopes, run)
    await system.ingested(run)
    const systemStats = await system.stats?.()
    const ready = Date.now()
    const ingestSeconds = (ready - started) / 1000
    if (ready > firstDue) context.progress.step(`  ${system.name}: ready ${ready - firstDue} ms after the first envelope was due`)

    const seen = new Uint8Array(scenario.pending)
    const lateness = new Float64Array(scenario.pending)
    let measured = 0
    let delivered = 0
    let duplicates = 0
    let dueBeforeReady = 0
    let lastSeen = 0
    let offset = 0n
    const deadline = firstDue + scenario.windowMs + 120_000
    let nextReport = Date.now() + 5000
    while (delivered < scenario.pending && Date.now() < deadline) {
      const batches = await reader.fetch([{ topic: destination, partition: 0, offset }])
      const now = Date.now()
      for (const batch of batches) {
        for (const record of batch.records) {
          const text = record.value?.toString('latin1') ?? ''
          const colon = text.indexOf(':')
          const index = Number(text.slice(1, colon))
          const due = Number(text.slice(colon + 1))
          if (seen[index] === 1) {
            duplicates++
            continue
          }
          seen[index] = 1
          delivered++
          lastSeen = now
          if (due < ready) dueBeforeReady++
          else lateness[measured++] = now - due
        }
        if (batch.nextOffset > offset) offset = batch.nextOffset
      }
      if (now >= nextReport) {
        context.progress.step(`  ${system.name}: ${delivered.toLocaleString('en')}/${scenario.pending.toLocaleString('en')} delivered`)
        nextReport = now + 5000
      }
    }
    const sorted = lateness.subarray(0, measured).sort()
    return {
      system: system.name,
      pending: scenario.pending,
      offeredPerSecond: Math.round(scenario.pending / (scenario.windowMs / 1000)),
      deliveredPerSecond: delivered === 0 ? 0 : Math.round(delivered / (Math.max(1, lastSeen - firstDue) / 1000)),
      latenessP50Ms: Math.round(percentile(sorted, 50)),
      latenessP99Ms: Math.round(percentile(sorted, 99)),
      latenessMaxMs: Math.round(sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number)),
      delivered,
      dueBeforeReady,
      duplicates,
      missing: scenario.pending - delivered,
      ingestSeconds: Number(ingestSeconds.toFixed(1)),
      ...(systemStats === undefined ? {} : { systemStats }),
    }
  } finally {
    await reader.close()
    await system.stop()
    await context.admin.deleteTopics([destination]).catch(() => {})
  }
}
