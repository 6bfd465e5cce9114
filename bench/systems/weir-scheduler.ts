// weir's delayed delivery as a bench system: a worker process running bench/topologies/scheduler.ts (the
// scheduler processor: durable timers in RocksDB with a changelog, exactly-once delivery).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { createProducer } from '../../kafka/index.ts'
import type { OutgoingRecord } from '../../kafka/index.ts'
import { schedulerRequestSerde } from '../../processors/scheduler.ts'
import { spawnWorker, waitForAssignment } from '../../test/helpers/workers.ts'
import type { WorkerProcess } from '../../test/helpers/workers.ts'
import type { DelayedEnvelope, DelayedRunContext, DelayedSystem } from '../delayed.ts'

const MODULE = resolve(import.meta.dirname, '../topologies/scheduler.ts')

export function weirScheduler(extraEnv: Record<string, string> = {}): DelayedSystem {
  let worker: WorkerProcess | undefined
  let stateDir: string | undefined
  let requests = ''
  let applicationId = ''
  return {
    name: 'weir',
    async start(context: DelayedRunContext) {
      requests = `bench-${context.runId}.schedule`
      applicationId = `bench-weir-scheduler-${context.runId}`
      await context.admin.createTopics([{ name: requests, partitions: 1 }])
      stateDir = await mkdtemp(join(tmpdir(), 'weir-bench-scheduler-'))
      worker = spawnWorker({
        name: 'weir-scheduler',
        module: MODULE,
        brokers: context.brokers,
        stateDir,
        applicationId,
        env: { WEIR_BENCH_REQUESTS_TOPIC: requests, ...extraEnv },
      })
      await waitForAssignment([worker], 1, 120_000)
    },
    async load(envelopes: readonly DelayedEnvelope[], context: DelayedRunContext) {
      const producer = createProducer({ brokers: context.brokers, clientId: 'bench-scheduler-load' })
      try {
        for (let i = 0; i < envelopes.length; i += 5000) {
          const batch: OutgoingRecord[] = envelopes.slice(i, i + 5000).map((e) => ({
            topic: requests,
            key: e.id,
            value: schedulerRequestSerde.serialize({ op: 'schedule', id: e.id, deliverAt: e.deliverAt, topic: e.topic, value: e.value }) as Buffer,
          }))
          await producer.send(batch)
        }
      } finally {
        await producer.close()
      }
    },
    async ingested(context: DelayedRunContext) {
      for (;;) {
        const committed = await context.admin.committedOffsets(applicationId, requests)
        if (committed.reduce((sum, p) => sum + (p.offset > 0n ? Number(p.offset) : 0), 0) >= context.pending) return
        if (worker?.child.exitCode !== null) throw new Error(`the weir worker exited:\n${worker?.logs()}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    async stop() {
      await worker?.kill('SIGTERM')
      worker = undefined
      if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true })
    },
  }
}
