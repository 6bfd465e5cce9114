// Where a command's time goes in the gateway load test: the stages between its timestamps, the observer that
// notes when each command and outcome became visible on Kafka, and the percentiles of each stage.
import { decodeEnvelope } from '../../envelope/codec.ts'
import { createPartitionReader } from '../../kafka/index.ts'
import type { Sample } from './client-process.ts'
import { kafkaSecurity } from '../../test/helpers/kafka.ts'

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}
export const round = (n: number, digits = 1) => Number(n.toFixed(digits))

/** The stages of a command, each from one timestamp to the next (epoch ms, one machine's clock). */
export const STAGES = [
  ['clientToGateway', 'client -> gateway envelope (socket, auth\'d session, validation)'],
  ['gatewayToProduced', 'gateway -> command on Kafka (group-commit produce, visible to a reader)'],
  ['producedToHandler', 'command on Kafka -> handler result (worker fetch and queue, dedupe, handler, store, arbiter)'],
  ['handlerToVisible', 'handler result -> outcome visible (the worker\'s commit)'],
  ['outcomeToClient', 'outcome visible -> client (gateway fetch, frame, socket)'],
] as const
export type Stage = (typeof STAGES)[number][0]
export type StageStats = { p50Ms: number; p99Ms: number; meanOfSlowest1PctMs: number }

/**
 * Watches the commands and results topics as the gateway does (read_committed, long polls) and notes when each
 * request's record first became visible: the gateway's produce, and the commit point of the worker's transaction.
 * The envelopes' createdAt tell when the gateway and the handler made them (an ok outcome is the handler's result).
 */
export function watchVisibility(brokers: readonly string[], topics: readonly string[], partitionCount: number) {
  const reader = createPartitionReader({ ...kafkaSecurity(), brokers: [...brokers], clientId: 'bench-observer', isolation: 'read_committed', maxWaitMs: 20 })
  const seen = new Map(topics.map((t) => [t, new Map<string, { visibleAt: number; createdAt: number }>()]))
  let stopped = false
  const started = (async () => {
    const partitions = topics.flatMap((topic) => Array.from({ length: partitionCount }, (_, partition) => ({ topic, partition })))
    return reader.offsets(partitions, 'latest')
  })()
  const loop = (async () => {
    let positions = await started
    while (!stopped) {
      const batches = await reader.fetch(positions)
      const visibleAt = performance.timeOrigin + performance.now()
      for (const batch of batches) {
        const byRequest = seen.get(batch.topic)
        for (const record of batch.records) {
          if (record.value === null || record.value === undefined || byRequest === undefined) continue
          const envelope = decodeEnvelope(record.value)
          if (!byRequest.has(envelope.requestId)) byRequest.set(envelope.requestId, { visibleAt, createdAt: envelope.createdAt })
        }
        positions = positions.map((p) => (p.topic === batch.topic && p.partition === batch.partition ? { ...p, offset: batch.nextOffset } : p))
      }
    }
  })()
  return {
    ready: started.then(() => undefined),
    async stop() {
      stopped = true
      await loop
      await reader.close()
      return seen
    },
  }
}

export function breakdown(
  measured: readonly Sample[],
  produced: Map<string, { visibleAt: number; createdAt: number }>,
  outcomes: Map<string, { visibleAt: number; createdAt: number }>,
): Record<Stage, StageStats> | undefined {
  const rows: Array<Record<Stage, number> & { total: number }> = []
  for (const [requestId, sentAt, receivedAt] of measured) {
    const command = produced.get(requestId)
    const outcome = outcomes.get(requestId)
    if (receivedAt < 0 || command === undefined || outcome === undefined) continue
    rows.push({
      clientToGateway: command.createdAt - sentAt,
      gatewayToProduced: command.visibleAt - command.createdAt,
      producedToHandler: outcome.createdAt - command.visibleAt,
      handlerToVisible: outcome.visibleAt - outcome.createdAt,
      outcomeToClient: receivedAt - outcome.visibleAt,
      total: receivedAt - sentAt,
    })
  }
  if (rows.length === 0) return undefined
  const slowest = [...rows].sort((a, b) => b.total - a.total).slice(0, Math.max(1, Math.floor(rows.length / 100)))
  const result = {} as Record<Stage, StageStats>
  for (const [stage] of STAGES) {
    const sorted = rows.map((r) => r[stage]).sort((a, b) => a - b)
    result[stage] = {
      p50Ms: round(percentile(sorted, 50)),
      p99Ms: round(percentile(sorted, 99)),
      meanOfSlowest1PctMs: round(slowest.reduce((sum, r) => sum + r[stage], 0) / slowest.length),
    }
  }
  return result
}
