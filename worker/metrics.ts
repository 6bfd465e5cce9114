// Prometheus metrics of a worker, read from the runtime at scrape time.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

import type { FaultInjector } from '../processors/faults/injector.ts'
import type { RuntimeMetrics, StreamRuntime } from '../topology/runtime/runtime-options.ts'

export interface WorkerMetrics {
  readonly contentType: string
  render(): Promise<string>
}

export function createWorkerMetrics(runtime: StreamRuntime, faults?: FaultInjector): WorkerMetrics {
  const registry = new Registry()
  registry.setDefaultLabels({ application_id: runtime.applicationId })
  collectDefaultMetrics({ register: registry })
  let snapshot: RuntimeMetrics | undefined
  const read = async () => {
    snapshot = await runtime.metrics()
    return snapshot
  }
  // Counters mirror the runtime's monotonic totals.
  const counter = (name: string, help: string, pick: (m: RuntimeMetrics) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      async collect() {
        const m = snapshot ?? (await read())
        this.reset()
        this.inc(pick(m))
      },
    })
  const gauge = (name: string, help: string, pick: (m: RuntimeMetrics) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(pick(snapshot ?? (await read())))
      },
    })
  counter('weir_records_processed_total', 'Input records processed (committed)', (m) => m.processed)
  counter('weir_records_produced_total', 'Output records produced (committed)', (m) => m.outputs)
  counter('weir_records_dead_lettered_total', 'Records sent to dead-letter topics (committed)', (m) => m.deadLettered)
  counter('weir_records_skipped_total', 'Records skipped by the skip error policy (committed)', (m) => m.skipped)
  counter('weir_timers_fired_total', 'Durable timers fired (committed)', (m) => m.timersFired)
  counter('weir_commits_total', 'Task transactions committed', (m) => m.commits)
  counter('weir_commits_failed_total', 'Task transactions that failed and were rolled back', (m) => m.failedCommits)
  counter('weir_restored_records_total', 'Changelog records replayed into local stores', (m) => m.restoredRecords)
  gauge('weir_records_uncommitted', 'Input records processed and not yet committed', (m) => m.uncommitted)
  gauge('weir_tasks', 'Tasks (partitions) owned by this worker', (m) => m.tasks)
  gauge('weir_tasks_restoring', 'Tasks restoring their stores', (m) => m.restoring)
  gauge('weir_last_commit_seconds', 'Duration of the last commit round', (m) => m.lastCommitMs / 1000)
  gauge('weir_timers_pending', 'Durable timers waiting to fire', (m) => m.timersPending)
  gauge('weir_tasks_failing', 'Tasks failing: backing off after failures in a row, or re-opened and not yet committed', (m) => m.failures.filter((f) => f.state === 'failing').length)
  gauge('weir_tasks_stopped', 'Tasks stopped after failing again and again (WEIR_ERR_TASK_STOPPED): their partitions are not served', (m) => m.failures.filter((f) => f.state === 'stopped').length)
  new Gauge({
    name: 'weir_task_failures',
    help: 'Consecutive failures of a failing or stopped task, by partition, state and error code',
    labelNames: ['partition', 'state', 'code'],
    registers: [registry],
    async collect() {
      const m = snapshot ?? (await read())
      this.reset()
      for (const f of m.failures) this.set({ partition: String(f.partition), state: f.state, code: f.code }, f.failures)
    },
  })
  if (faults !== undefined) registerFaultMetrics(registry, faults)
  return {
    contentType: registry.contentType,
    async render() {
      await read()
      try {
        return await registry.metrics()
      } finally {
        snapshot = undefined
      }
    },
  }
}

/** Fault injection's metrics, only on a worker that injects faults (--faults true). */
function registerFaultMetrics(registry: Registry, faults: FaultInjector): void {
  new Counter({
    name: 'weir_faults_injected_total',
    help: 'Faults injected, by kind and rule (work redone after an aborted transaction counts again)',
    labelNames: ['kind', 'rule'],
    registers: [registry],
    collect() {
      this.reset()
      for (const injection of faults.injections()) this.inc({ kind: injection.kind, rule: injection.rule }, injection.count)
    },
  })
  new Gauge({
    name: 'weir_fault_rules',
    help: 'Fault rules in force',
    registers: [registry],
    collect() {
      this.set(faults.rules().length)
    },
  })
  new Counter({
    name: 'weir_fault_control_rejected_total',
    help: 'Fault control records refused as malformed (WEIR_ERR_FAULT_RULE_INVALID)',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(faults.rejected)
    },
  })
}
