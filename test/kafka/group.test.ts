// Group membership on the real broker: the sticky co-partitioned assignment with real members joining and
// leaving, and static membership (a member restarted with the same group.instance.id gets its partitions back
// with no rebalance).
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { createGroupMember } from '../../kafka/index.ts'
import type { GroupMember, TopicPartition } from '../../kafka/index.ts'
import { brokers, closeAdmin, createTopics, uniqueName } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'

after(closeAdmin)

const PARTITIONS = 12

function indexes(partitions: readonly TopicPartition[], topic: string): number[] {
  return partitions.filter((p) => p.topic === topic).map((p) => p.partition).sort((a, b) => a - b)
}

/** Waits until every member is in the same generation and together they own each partition of each topic once. */
async function stable(members: ReadonlyMap<string, GroupMember>, topics: readonly string[]): Promise<Map<string, number[]>> {
  return waitFor(
    () => {
      const generations = new Set([...members.values()].map((m) => m.generation().generationId))
      if (generations.size !== 1) return undefined
      const owned = new Map<string, number[]>()
      for (const [name, member] of members) {
        const mine = member.assignments()
        const [first, ...rest] = topics.map((topic) => indexes(mine, topic))
        // Co-partitioned: partition N of every topic with the same member.
        for (const other of rest) assert.deepEqual(other, first, `${name} holds the same partitions of every topic`)
        owned.set(name, first ?? [])
      }
      const all = [...owned.values()].flat().sort((a, b) => a - b)
      return all.length === PARTITIONS && all.every((p, i) => p === i) ? owned : undefined
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `${members.size} member(s) to share ${PARTITIONS} partitions` },
  )
}

function moved(before: Map<string, number[]>, after: Map<string, number[]>): number {
  const owner = new Map<number, string>()
  for (const [name, list] of before) for (const p of list) owner.set(p, name)
  let count = 0
  for (const [name, list] of after) for (const p of list) if (owner.get(p) !== name) count++
  return count
}

test('sticky assignment with real members: a join and a leave move only the share that must move', async (t) => {
  const topics = await createTopics(t, { prefix: 'grp-a', partitions: PARTITIONS }, { prefix: 'grp-b', partitions: PARTITIONS })
  const groupId = uniqueName('sticky')
  const members = new Map<string, GroupMember>()
  t.after(async () => {
    for (const member of members.values()) await member.close()
  })
  const join = async (name: string) => {
    const member = createGroupMember({ brokers: brokers(), groupId, topics, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 300, clientId: `${groupId}-${name}` })
    members.set(name, member)
    await member.join()
  }
  await Promise.all(['a', 'b', 'c'].map(join))
  const three = await stable(members, topics)
  for (const list of three.values()) assert.equal(list.length, 4)

  await join('d')
  const four = await stable(members, topics)
  for (const list of four.values()) assert.equal(list.length, 3)
  assert.equal(moved(three, four), 3, `only the new member's share moved: ${JSON.stringify([...three])} -> ${JSON.stringify([...four])}`)

  const d = members.get('d') as GroupMember
  members.delete('d')
  await d.leave()
  await d.close()
  const back = await stable(members, topics)
  for (const list of back.values()) assert.equal(list.length, 4)
  assert.equal(moved(four, back), 3, `only the leaving member's partitions moved: ${JSON.stringify([...four])} -> ${JSON.stringify([...back])}`)
})

test('static membership: a member restarted with the same instance id gets its partitions back with no rebalance', async (t) => {
  const topics = await createTopics(t, { prefix: 'grp-static', partitions: PARTITIONS })
  const groupId = uniqueName('static')
  const open: GroupMember[] = []
  t.after(async () => {
    for (const member of open) await member.close()
  })
  const start = async (instance: string) => {
    // A long session timeout: the restart below must happen within it, however loaded the machine is.
    const member = createGroupMember({ brokers: brokers(), groupId, topics, sessionTimeoutMs: 45_000, heartbeatIntervalMs: 500, groupInstanceId: `${groupId}-${instance}` })
    open.push(member)
    await member.join()
    return member
  }
  const a = await start('a')
  const b = await start('b')
  const before = await stable(new Map([['a', a], ['b', b]]), topics)
  const generation = b.generation().generationId
  let rebalances = 0
  b.onAssignment(() => rebalances++)

  await a.close()
  const restarted = await start('a')
  const after = await stable(new Map([['a', restarted], ['b', b]]), topics)
  assert.deepEqual(after, before, 'the restarted member has exactly its partitions again')
  assert.equal(restarted.generation().generationId, generation, 'same generation: the group did not rebalance')
  assert.equal(b.generation().generationId, generation)
  assert.equal(rebalances, 0, 'the other member was not rebalanced')
})
