// `npm run bench:rolling-restart [-- --members 3] [--partitions 12] [--trials 1000] [--kafka] [--json]`: how many partitions
// move in a rolling restart of every worker, one after the other, with the group's assignment function:
//   round-robin  the assignment weir used before: partition N to the (N mod members)-th member id in sorted
//                order. Member ids are `<client id>-<random UUID>` from the broker, new on every restart, so a
//                restarted member lands anywhere in that order;
//   sticky       kafka/sticky-assignor.ts, the function the group leader runs now (members report what they own
//                and where they have local state);
// Static membership (--instance-id) is measured with --kafka only: whether a restart is a rebalance is up to the
// broker, not the assignment function.
// Dynamic membership: a stopping worker leaves the group (one rebalance without it), then joins again with a new
// member id and its state folders on disk (a second rebalance). `moved`: partitions whose worker changed, summed
// over all rebalances; `cold`: moves to a worker without local state for the partition (a restore from the
// start of the changelog). Random member ids are seeded, so runs repeat; round-robin shows the mean and range.
// --kafka also runs the restart with real group members on a broker (the library's assignment, dynamic and
// static membership; state folders are simulated, as above) and counts the same from their assignments and
// generations.
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'

import { createAdmin, createGroupMember } from '../kafka/index.ts'
import type { GroupMember } from '../kafka/index.ts'
import { assignSticky } from '../kafka/sticky-assignor.ts'
import { InfraUnavailable, createProgress, provideInfrastructure } from '../scripts/infra/index.ts'
import { kafkaSecurity } from '../test/helpers/kafka.ts'

const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '3' },
    partitions: { type: 'string', default: '12' },
    trials: { type: 'string', default: '1000' },
    json: { type: 'boolean', default: false },
    kafka: { type: 'boolean', default: false },
  },
})
const members = Number(values.members)
const partitions = Number(values.partitions)
const trials = Number(values.trials)

function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The assignment before the sticky assignor, unchanged: partition indexes round-robin over sorted member ids. */
function roundRobin(count: number, ids: readonly string[]): Map<string, number[]> {
  const sorted = [...ids].sort()
  const result = new Map<string, number[]>(sorted.map((id) => [id, []]))
  for (let p = 0; p < count; p++) result.get(sorted[p % sorted.length] as string)?.push(p)
  return result
}

type Assign = (present: readonly string[], ids: ReadonlyMap<string, string>, owned: ReadonlyMap<string, number[]>, local: ReadonlyMap<string, Set<number>>, generation: number) => Map<string, number[]>

const assigners: Record<'round-robin' | 'sticky', Assign> = {
  'round-robin': (present, ids) => {
    const bySlot = new Map(present.map((slot) => [ids.get(slot) as string, slot]))
    return new Map([...roundRobin(partitions, [...bySlot.keys()])].map(([id, list]) => [bySlot.get(id) as string, list]))
  },
  sticky: (present, ids, owned, local, generation) => {
    const bySlot = new Map(present.map((slot) => [ids.get(slot) as string, slot]))
    const subscriptions = present.map((slot) => {
      const mine = owned.get(slot) ?? []
      return { memberId: ids.get(slot) as string, generation: mine.length > 0 ? generation : -1, owned: mine, local: [...(local.get(slot) ?? [])] }
    })
    return new Map([...assignSticky(partitions, subscriptions)].map(([id, list]) => [bySlot.get(id) as string, list]))
  },
}

interface Outcome {
  rebalances: number
  moved: number
  cold: number
}

function rollingRestart(assign: Assign, random: () => number): Outcome {
  const slots = Array.from({ length: members }, (_, i) => `w${i + 1}`)
  const uuid = () => Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('')
  const ids = new Map(slots.map((slot) => [slot, `weir-member-app-${uuid()}`]))
  const local = new Map(slots.map((slot) => [slot, new Set<number>()]))
  let owned = new Map<string, number[]>()
  let generation = 0
  const outcome: Outcome = { rebalances: 0, moved: 0, cold: 0 }
  const rebalance = (present: readonly string[], count: boolean) => {
    generation++
    const next = assign(present, ids, owned, local, generation - 1)
    const owner = new Map<number, string>()
    for (const [slot, list] of owned) for (const p of list) owner.set(p, slot)
    for (const [slot, list] of next) {
      for (const p of list) {
        if (count && owner.get(p) !== slot) {
          outcome.moved++
          if (!(local.get(slot) as Set<number>).has(p)) outcome.cold++
        }
        ;(local.get(slot) as Set<number>).add(p)
      }
    }
    if (count) outcome.rebalances++
    owned = next
  }
  rebalance(slots, false)
  for (const slot of slots) {
    rebalance(slots.filter((s) => s !== slot), true)
    owned.delete(slot)
    ids.set(slot, `weir-member-app-${uuid()}`)
    rebalance(slots, true)
  }
  return outcome
}

function summarize(outcomes: Outcome[]) {
  const stat = (key: keyof Outcome) => {
    const list = outcomes.map((o) => o[key])
    return { mean: list.reduce((a, b) => a + b, 0) / list.length, min: Math.min(...list), max: Math.max(...list) }
  }
  return { rebalances: stat('rebalances'), moved: stat('moved'), cold: stat('cold') }
}

const random = seeded(15)
const results = {
  members,
  partitions,
  trials,
  'round-robin': summarize(Array.from({ length: trials }, () => rollingRestart(assigners['round-robin'], random))),
  sticky: summarize(Array.from({ length: trials }, () => rollingRestart(assigners.sticky, random))),
}

/** The same rolling restart with real members on a broker: moves and rebalances counted from their assignments. */
async function onKafka(brokers: string[], mode: 'dynamic' | 'static'): Promise<Outcome> {
  const topic = `weir-bench-rolling-${randomBytes(4).toString('hex')}`
  const groupId = `${topic}-${mode}`
  const admin = createAdmin({ ...kafkaSecurity(), brokers })
  await admin.createTopics([{ name: topic, partitions }])
  const slots = Array.from({ length: members }, (_, i) => `w${i + 1}`)
  const local = new Map(slots.map((slot) => [slot, new Set<number>()]))
  const live = new Map<string, GroupMember>()
  const outcome: Outcome = { rebalances: 0, moved: 0, cold: 0 }
  let owned = new Map<string, number[]>()
  let generation = -1
  const start = async (slot: string) => {
    const member = createGroupMember({
      ...kafkaSecurity(),
      brokers,
      groupId,
      topics: [topic],
      sessionTimeoutMs: mode === 'static' ? 60_000 : 10_000,
      heartbeatIntervalMs: 300,
      localPartitions: () => [...(local.get(slot) as Set<number>)],
      ...(mode === 'static' ? { groupInstanceId: `${groupId}-${slot}` } : {}),
    })
    live.set(slot, member)
    await member.join()
  }
  /** Waits until the live members share every partition in one generation, then counts what changed. */
  const settle = async (count: boolean) => {
    const deadline = Date.now() + 120_000
    for (;;) {
      const generations = new Set([...live.values()].map((m) => m.generation().generationId))
      const next = new Map([...live].map(([slot, m]) => [slot, m.assignments().map((p) => p.partition).sort((a, b) => a - b)]))
      const all = [...next.values()].flat().sort((a, b) => a - b)
      if (generations.size === 1 && all.length === partitions && all.every((p, i) => p === i)) {
        const current = [...generations][0] as number
        if (count && current !== generation) outcome.rebalances++
        generation = current
        const owner = new Map<number, string>()
        for (const [slot, list] of owned) for (const p of list) owner.set(p, slot)
        for (const [slot, list] of next) {
          for (const p of list) {
            if (count && owner.get(p) !== slot) {
              outcome.moved++
              if (!(local.get(slot) as Set<number>).has(p)) outcome.cold++
            }
            ;(local.get(slot) as Set<number>).add(p)
          }
        }
        owned = next
        return
      }
      if (Date.now() > deadline) throw new Error(`the group did not settle: ${JSON.stringify([...next])}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  try {
    for (const slot of slots) await start(slot)
    await settle(false)
    for (const slot of slots) {
      const member = live.get(slot) as GroupMember
      live.delete(slot)
      if (mode === 'dynamic') {
        await member.leave()
        await member.close()
        await settle(true)
      } else {
        await member.close()
      }
      await start(slot)
      await settle(true)
    }
    return outcome
  } finally {
    for (const member of live.values()) await member.close()
    await admin.deleteTopics([topic]).catch(() => {})
    await admin.close()
  }
}

let measured: { dynamic: Outcome; static: Outcome } | undefined
if (values.kafka) {
  const progress = createProgress('bench')
  try {
    const infra = await provideInfrastructure({ redis: false, progress })
    try {
      progress.step(`rolling restart on Kafka: ${members} members, ${partitions} partitions, dynamic membership`)
      const dynamic = await onKafka(infra.kafka.brokers, 'dynamic')
      progress.step('rolling restart on Kafka: static membership')
      measured = { dynamic, static: await onKafka(infra.kafka.brokers, 'static') }
    } finally {
      await infra.stop()
    }
  } catch (error) {
    if (error instanceof InfraUnavailable) process.stderr.write(`[bench] no Kafka broker: ${error.message}\n`)
    throw error
  }
}

const cell = (s: { mean: number; min: number; max: number }) => (s.min === s.max ? String(s.min) : `${s.mean.toFixed(1)} (${s.min}..${s.max})`)
process.stdout.write(
  [
    `rolling restart of ${members} workers, ${partitions} partitions, ${trials} trials (moves summed over the restart)`,
    '',
    `${'assignment'.padEnd(14)}${'rebalances'.padEnd(14)}${'moved'.padEnd(20)}cold (restore from scratch)`,
    ...(['round-robin', 'sticky'] as const).map(
      (name) => `${name.padEnd(14)}${cell(results[name].rebalances).padEnd(14)}${cell(results[name].moved).padEnd(20)}${cell(results[name].cold)}`,
    ),
    '',
    ...(measured === undefined
      ? []
      : [
          'on Kafka (real members, the sticky assignment)',
          ...(['dynamic', 'static'] as const).map(
            (name) => `${`sticky ${name}`.padEnd(16)}rebalances ${measured?.[name].rebalances}, moved ${measured?.[name].moved}, cold ${measured?.[name].cold}`,
          ),
          '',
        ]),
  ].join('\n'),
)
if (values.json) process.stdout.write(`${JSON.stringify({ ...results, ...(measured === undefined ? {} : { kafka: measured }) })}\n`)
