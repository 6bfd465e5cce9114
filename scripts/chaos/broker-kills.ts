// The chaos run's broker kills: which broker each kill of the schedule hits (a source partition's leader, a
// task's transaction coordinator, the group coordinator, then every node in turn), the SIGKILL and restart, and
// per kill the seconds until every task committed again.
import type { ClusterView } from '../../kafka/index.ts'
import type { Tail, TailedRecord } from '../../test/helpers/tail.ts'
import type { Infrastructure, LocalNode, Progress } from '../infra/index.ts'
import { random, sleep } from './options.ts'

/** One broker kill of the schedule: what to kill (a rolling restart names its node). */
export type BrokerKillKind = 'source-leader' | 'transaction-coordinator' | 'group-coordinator' | 'rolling'
export type BrokerSchedule = Array<{ kind: BrokerKillKind; node?: number }>

/** Kinds in turn until at least `requested` kills; a rolling restart, once started, covers every node. */
export function brokerSchedule(requested: number, nodes: number): BrokerSchedule {
  const schedule: BrokerSchedule = []
  const kinds: BrokerKillKind[] = ['source-leader', 'transaction-coordinator', 'group-coordinator', 'rolling']
  for (let i = 0; schedule.length < requested; i++) {
    const kind = kinds[i % kinds.length] as BrokerKillKind
    if (kind === 'rolling') for (let node = 1; node <= nodes; node++) schedule.push({ kind, node })
    else schedule.push({ kind })
  }
  return schedule
}

/** Time the feed is stretched by per planned broker kill (down, restart, recovery, replicas back in sync), s. */
export const SECONDS_PER_BROKER_KILL = 50

/** What the broker kills found: how many, which, and the seconds of each recovery (null: not seen in time). */
export interface BrokerKillFacts {
  kills: number
  targets: string[]
  recoveries: Array<number | null>
}

export interface BrokerKillContext {
  applicationId: string
  input: string
  partitions: number
  brokers: number
  /**
   * Per application, the topics its tasks write to (co-partitioned with their input: task p writes partition p):
   * a record visible on any of them is a commit of that task.
   */
  recoveryTopics: ReadonlyArray<readonly string[]>
  /** Topics whose replicas must be back in sync before the next kill. */
  runTopics: readonly string[]
  tail: Tail
  progress: Progress
  /** True once the feed sent its last record (no new commits then: recovery cannot be seen). */
  fed(): boolean
  done: BrokerKillFacts
}

/** The broker kills of the schedule, one after the other, each followed by its recovery. */
export async function killBrokers(view: ClusterView, infra: Infrastructure, schedule: BrokerSchedule, context: BrokerKillContext): Promise<void> {
  const nodes = infra.kafka.nodes ?? []
  const { applicationId, input, partitions, recoveryTopics, tail, progress, done } = context
  const expected = recoveryTopics.length * partitions
  const application = new Map(recoveryTopics.flatMap((topics, index) => topics.map((topic) => [topic, index] as const)))
  let scanned = 0
  /** Seconds from `since` until every task of both applications had a commit visible after it; null after `timeoutMs`. */
  const committedAgain = async (since: number, timeoutMs: number): Promise<number | null> => {
    const first = new Map<string, number>()
    for (let index = scanned; ; ) {
      for (; index < tail.records.length; index++) {
        const { record, visibleAt } = tail.records[index] as TailedRecord
        const app = application.get(record.topic)
        const key = `${app}\u0000${record.partition}`
        if (visibleAt > since && app !== undefined && !first.has(key)) first.set(key, visibleAt)
      }
      if (first.size === expected) {
        scanned = index
        return Math.round((Math.max(...first.values()) - since) / 100) / 10
      }
      if (Date.now() - since > timeoutMs) return null
      await sleep(200)
    }
  }
  const target = async (step: BrokerSchedule[number]): Promise<number> => {
    const partition = random(0, partitions)
    if (step.kind === 'rolling') return step.node as number
    if (step.kind === 'source-leader') return (await view.leaders(input))[partition] ?? -1
    if (step.kind === 'transaction-coordinator') return view.coordinator('transaction', `${applicationId}-${partition}`)
    return view.coordinator('group', applicationId)
  }
  /**
   * Recovered: every node is back in the cluster's metadata (registered, unfenced) and every partition of the
   * run's topics, its changelogs and Kafka's own offsets and transaction logs has all its replicas in sync, so the
   * next kill takes no partition below min.insync.replicas. What is missing, or undefined.
   */
  const notRecovered = async (): Promise<string | undefined> => {
    const listed = await view.brokers().catch(() => [])
    if (listed.length < nodes.length) return `brokers listed: ${listed.join(',') || 'none'}`
    const replicas = Math.min(context.brokers, 3)
    const topics = [...context.runTopics, ...(await view.topicsWithPrefix(applicationId).catch(() => [])), '__consumer_offsets', '__transaction_state']
    for (const topic of topics) {
      const isr = await view.inSyncReplicas(topic).catch(() => [[]])
      const short = isr.findIndex((r) => r.length < replicas)
      if (short >= 0) return `${topic}[${short}] in sync: ${(isr[short] ?? []).join(',') || 'none'}`
    }
    return undefined
  }
  const recovered = async (since: number, timeoutMs: number): Promise<void> => {
    let missing = await notRecovered()
    while (missing !== undefined && Date.now() - since < timeoutMs) {
      await sleep(1000)
      missing = await notRecovered()
    }
    const seconds = Math.round((Date.now() - since) / 100) / 10
    progress.step(missing === undefined ? `cluster recovered (every broker listed, every replica in sync) ${seconds} s after the kill` : `cluster not recovered ${seconds} s after the kill: ${missing}`)
  }
  for (const step of schedule) {
    // Every task commits before the kill, so the recovery measured is this kill's.
    const flowing = await committedAgain(Date.now(), 60_000)
    if (flowing === null) progress.step(`before the broker kill: not every task committed within 60 s${context.fed() ? ' (the feed has ended)' : ''}`)
    const id = await target(step).catch(() => -1)
    const node = nodes.find((n) => n.id === id) ?? (nodes[random(0, nodes.length)] as LocalNode)
    const since = Date.now()
    await node.kill('SIGKILL')
    done.kills++
    done.targets.push(`${step.kind}:${node.id}`)
    progress.step(`SIGKILL broker ${node.id} (${step.kind}; ${done.kills}/${schedule.length})`)
    await sleep(random(2000, 5000))
    await node.restart()
    const recovery = await committedAgain(since, 90_000)
    done.recoveries.push(recovery)
    progress.step(`broker ${node.id} restarted; ${recovery === null ? `not every task committed again within 90 s${context.fed() ? ' (the feed had ended)' : ''}` : `every task committed again ${recovery} s after the kill`}`)
    await recovered(since, 180_000)
  }
}
