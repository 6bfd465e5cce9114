// weir's delayed delivery as a bench system: a worker process running bench/topologies/scheduler.ts (the
// scheduler processor: durable timers in RocksDB with a changelog, exactly-once delivery).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { spawnWorker, waitForAssignment } from '../../test/helpers/workers.ts'
import type { WorkerProcess } from '../../test/helpers/workers.ts'
import type { DelayedEnvelope, DelayedRunContext, DelayedSystem } from '../delayed.ts'
import { produceScheduleRequests, waitCommitted } from './schedule-requests.ts'

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
      await produceScheduleRequests(context.brokers, requests, envelopes)
    },
    async ingested(context: DelayedRunContext) {
      await waitCommitted(context.admin, applicationId, requests, context.pending, () =>
        worker?.child.exitCode === null ? undefined : `the weir worker exited:\n${worker?.logs()}`,
      )
    },
    async stats() {
      // The worker's Prometheus metrics with every envelope pending: timers live in RocksDB, not in the JS heap.
      const text = await (await fetch(`http://127.0.0.1:${await (worker as WorkerProcess).port}/metrics`)).text()
      const metric = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? Number.NaN)
      return {
        heapUsedMb: Math.round(metric('nodejs_heap_size_used_bytes') / 1024 / 1024),
        rssMb: Math.round(metric('process_resident_memory_bytes') / 1024 / 1024),
      }
    },
    async stop() {
      await worker?.kill('SIGTERM')
      worker = undefined
      if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true })
    },
  }
}
