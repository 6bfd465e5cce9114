// The chaos run's worker processes: W of the chaos topology, C of the command service and the saga's (a
// participant service and two saga workers), started, SIGKILLed in turn and restarted, waited for until they own every partition, and stopped when the run ends however it ends.
import { join, resolve } from 'node:path'

import { spawnWorker, waitForAssignment } from '../../test/helpers/workers.ts'
import type { WorkerProcess } from '../../test/helpers/workers.ts'
import type { Progress } from '../infra/index.ts'
import type { SagaChaosWorkerSpec } from './sagas.ts'
import { random, sleep } from './options.ts'

const ROOT = resolve(import.meta.dirname, '../..')

interface WorkerSpec {
  name: string
  module: string
  applicationId: string
  env: Record<string, string>
  args?: readonly string[]
}

export interface FleetOptions {
  workers: number
  csWorkers: number
  partitions: number
  brokers: readonly string[]
  applicationId: string
  /** Each worker's state folder is `<base>/<name>`. */
  base: string
  /** Environment of the chaos topology's workers (its topics and timer range). */
  env: Record<string, string>
  /** Prefix of the command service's topics. */
  csPrefix: string
  /** The saga's workers (scripts/chaos/sagas.ts): names starting `sg` (the saga) and `sp` (its participant). */
  sagaWorkers: readonly SagaChaosWorkerSpec[]
  /** What every worker is started with besides (`--max-in-flight`, the chaos handler's delay: scripts/chaos/concurrency.ts). */
  everyWorker?: { env: Record<string, string>; extraArgs: readonly string[] }
  /** Extra arguments of the command-service workers (`--faults`). */
  csWorkerArgs?: readonly string[]
  /** Every worker's log goes to `<base>/<name>.log`; at debug level (each commit and transaction) when set. */
  debugLogs: boolean
  progress: Progress
}

export interface WorkerKills {
  killed: number
  restarts: number
  unplannedExits: number
}

export interface Fleet {
  /** Resolves once both kinds of worker own every partition between them; throws (with their last log lines) after `timeoutMs`. */
  assigned(timeoutMs: number): Promise<void>
  /**
   * SIGKILLs `kills` workers over `seconds`, both kinds in turn, each restarted after 0.3-2 s. `fed()` is for
   * the progress lines.
   */
  killWorkers(kills: number, seconds: number, fed: () => number, records: number): Promise<WorkerKills>
  /** SIGTERM every worker, then SIGKILL any that is not gone within 30 s. */
  stop(): Promise<void>
}

export function startFleet(options: FleetOptions): Fleet {
  const { workers: workerCount, csWorkers: csWorkerCount, partitions, base, progress } = options
  const specs: WorkerSpec[] = [
    ...Array.from({ length: workerCount }, (_, i) => ({ name: `w${i}`, module: resolve(ROOT, 'test/fixtures/chaos-topology.ts'), applicationId: options.applicationId, env: options.env })),
    ...Array.from({ length: csWorkerCount }, (_, i) => ({
      name: `cs${i}`,
      module: resolve(ROOT, 'test/fixtures/chaos-command-service.ts'),
      applicationId: `${options.applicationId}-cs`,
      env: { WEIR_CHAOS_CS_PREFIX: options.csPrefix },
      ...(options.csWorkerArgs === undefined ? {} : { args: options.csWorkerArgs }),
    })),
    ...options.sagaWorkers,
  ]
  const slots: WorkerProcess[] = []
  // Ctrl-C, SIGTERM or any exit: the workers go too (the infrastructure's own handlers stop the brokers).
  const killAll = () => {
    for (const worker of slots) if (worker !== undefined && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL')
  }
  process.once('SIGINT', killAll)
  process.once('SIGTERM', killAll)
  process.once('exit', killAll)
  const start = (i: number) => {
    const spec = specs[i] as WorkerSpec
    slots[i] = spawnWorker({
      name: spec.name,
      module: spec.module,
      brokers: options.brokers,
      stateDir: join(base, spec.name),
      applicationId: spec.applicationId,
      env: { ...spec.env, ...options.everyWorker?.env },
      logFile: join(base, `${spec.name}.log`),
      extraArgs: [...(options.everyWorker?.extraArgs ?? []), ...(spec.args ?? []), ...(options.debugLogs ? ['--log-level', 'debug'] : [])],
    })
  }
  for (let i = 0; i < specs.length; i++) start(i)
  progress.step(`${workerCount} chaos workers, ${csWorkerCount} command-service workers and ${options.sagaWorkers.length} saga workers starting on ${partitions} partitions`)
  const sagaSlots = (role: string) => slots.filter((w, i) => i >= workerCount + csWorkerCount && w !== undefined && w.name.startsWith(role))
  return {
    async assigned(timeoutMs) {
      try {
        await waitForAssignment(slots.slice(0, workerCount), partitions, timeoutMs)
        await waitForAssignment(slots.slice(workerCount, workerCount + csWorkerCount), partitions, timeoutMs)
        for (const role of ['sp', 'sg']) if (sagaSlots(role).length > 0) await waitForAssignment(sagaSlots(role), partitions, timeoutMs)
      } catch (error) {
        for (const worker of slots) process.stderr.write(`--- ${worker.name} (last log lines)\n${worker.logs().split('\n').slice(-15).join('\n')}\n`)
        throw error
      }
    },
    async killWorkers(kills, seconds, fed, records) {
      const facts: WorkerKills = { killed: 0, restarts: 0, unplannedExits: 0 }
      const gap = Math.max(1500, (seconds * 1000) / (kills + 1))
      while (facts.killed < kills) {
        await sleep(random(gap / 2, gap))
        // The kinds of worker in turn, so each gets its share of the kills: every third kill a saga worker.
        const sagaCount = options.sagaWorkers.length
        const i =
          sagaCount > 0 && facts.killed % 3 === 2
            ? workerCount + csWorkerCount + (Math.floor(facts.killed / 3) % sagaCount)
            : facts.killed % (sagaCount > 0 ? 3 : 2) === 1
              ? workerCount + random(0, csWorkerCount)
              : random(0, workerCount)
        const victim = slots[i] as WorkerProcess
        // A worker that already exited on its own is restarted, but it is no kill.
        const alive = victim.child.exitCode === null && victim.child.signalCode === null
        await victim.kill('SIGKILL')
        if (alive) facts.killed++
        else facts.unplannedExits++
        progress.step(alive ? `SIGKILL ${victim.name} (${facts.killed}/${kills}); ${fed()}/${records} records fed` : `${victim.name} had exited on its own; restarting it`)
        await sleep(random(300, 2000))
        start(i)
        facts.restarts++
      }
      return facts
    },
    async stop() {
      // Every worker on its own: one that fails (a broker that is gone) must not leave the others running.
      await Promise.all(slots.map(async (worker) => {
        if (worker === undefined) return
        const stopped = await Promise.race([worker.kill('SIGTERM').then(() => true, () => true), sleep(30_000).then(() => false)])
        if (!stopped) await worker.kill('SIGKILL').catch(() => {})
      }))
    },
  }
}
