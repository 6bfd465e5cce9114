// The sticky co-partitioned assignment as pure logic: balance, stickiness on joins and leaves, conflicts,
// rolling restarts (with and without the members' local state), and the userData codec.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { assignSticky, decodeStickyUserData, encodeStickyUserData } from '../../kafka/sticky-assignor.ts'
import type { StickyMember } from '../../kafka/sticky-assignor.ts'

function member(memberId: string, owned: number[] = [], local: number[] = owned, generation = owned.length > 0 ? 1 : -1): StickyMember {
  return { memberId, generation, owned, local }
}

/** Every partition exactly once, counts differing by at most one. */
function assertBalanced(assignment: Map<string, number[]>, partitions: number): void {
  const all = [...assignment.values()].flat().sort((a, b) => a - b)
  assert.deepEqual(all, Array.from({ length: partitions }, (_, i) => i), 'every partition exactly once')
  const counts = [...assignment.values()].map((list) => list.length)
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `balanced: ${JSON.stringify(Object.fromEntries(assignment))}`)
}

function moved(before: Map<string, number[]>, after: Map<string, number[]>): number {
  const owner = new Map<number, string>()
  for (const [id, list] of before) for (const p of list) owner.set(p, id)
  let count = 0
  for (const [id, list] of after) for (const p of list) if (owner.get(p) !== id) count++
  return count
}

const owning = (assignment: Map<string, number[]>, id: string, generation = 1) => member(id, assignment.get(id) ?? [], assignment.get(id) ?? [], generation)

test('a fresh group is balanced, and the same input gives the same assignment in any member order', () => {
  const members = ['c', 'a', 'b'].map((id) => member(id))
  const first = assignSticky(12, members)
  assertBalanced(first, 12)
  assert.deepEqual(assignSticky(12, [...members].reverse()), first)
  assertBalanced(assignSticky(7, members), 7)
  assertBalanced(assignSticky(2, members), 2)
})

test('a joining member takes only its share, from the members that have the most', () => {
  const before = assignSticky(12, [member('a'), member('b'), member('c')])
  const after = assignSticky(12, [owning(before, 'a'), owning(before, 'b'), owning(before, 'c'), member('d')])
  assertBalanced(after, 12)
  assert.equal((after.get('d') as number[]).length, 3)
  assert.equal(moved(before, after), 3, 'only the new member\'s three partitions moved')
  for (const id of ['a', 'b', 'c']) for (const p of after.get(id) as number[]) assert.ok((before.get(id) as number[]).includes(p), `${id} kept its own partitions`)
})

test('a leaving member\'s partitions are spread over the others, nothing else moves', () => {
  const before = assignSticky(12, [member('a'), member('b'), member('c'), member('d')])
  const after = assignSticky(12, [owning(before, 'a'), owning(before, 'b'), owning(before, 'c')])
  assertBalanced(after, 12)
  assert.equal(moved(before, after), 3)
  for (const id of ['a', 'b', 'c']) for (const p of before.get(id) as number[]) assert.ok((after.get(id) as number[]).includes(p), `${id} kept ${p}`)
})

test('uneven counts: members owning one more than the floor keep it while the extra slots last', () => {
  // 10 partitions over 3 members: 4, 3, 3.
  const before = new Map([['a', [0, 1, 2, 3]], ['b', [4, 5, 6]], ['c', [7, 8, 9]]])
  const same = assignSticky(10, [owning(before, 'a'), owning(before, 'b'), owning(before, 'c')])
  assert.deepEqual(same, before, 'a balanced assignment stays as it is')
  // Two over-full members, one extra slot: the one owning most keeps its extra, the other gives one up.
  const skewed = new Map([['a', [0, 1, 2, 3, 4]], ['b', [5, 6, 7, 8]], ['c', [9]]])
  const after = assignSticky(10, [owning(skewed, 'a'), owning(skewed, 'b'), owning(skewed, 'c')])
  assertBalanced(after, 10)
  assert.equal(moved(skewed, after), 2)
})

test('co-owned claims: the newest generation wins, out-of-range and duplicate partitions are ignored', () => {
  const after = assignSticky(4, [member('a', [0, 1], [0, 1], 5), member('b', [1, 2, 2, 9, -1], [], 7)])
  assertBalanced(after, 4)
  assert.deepEqual(after.get('b'), [1, 2], 'b claimed 1 in a newer generation')
  assert.deepEqual(after.get('a'), [0, 3])
})

test('a partition that must move goes to a member holding its local state when one has room', () => {
  // c comes back owning nothing (restarted without static membership) but still has the state of 8..11.
  const after = assignSticky(12, [member('a', [0, 1, 2, 3, 8, 9]), member('b', [4, 5, 6, 7, 10, 11]), member('c', [], [8, 9, 10, 11])])
  assertBalanced(after, 12)
  assert.deepEqual(after.get('c'), [8, 9, 10, 11])
})

test('members of earlier versions (no userData) and unreadable userData own nothing', () => {
  assert.deepEqual(decodeStickyUserData('x', undefined), { memberId: 'x', generation: -1, owned: [], local: [] })
  assert.deepEqual(decodeStickyUserData('x', Buffer.alloc(0)).owned, [])
  assert.deepEqual(decodeStickyUserData('x', Buffer.from('not json')).owned, [])
  assert.deepEqual(decodeStickyUserData('x', Buffer.from('{"v":99,"owned":[1]}')).owned, [])
  const round = decodeStickyUserData('x', encodeStickyUserData({ generation: 4, owned: [3, 1], local: [1, 3, 5] }))
  assert.deepEqual(round, { memberId: 'x', generation: 4, owned: [3, 1], local: [1, 3, 5] })
  const after = assignSticky(6, [decodeStickyUserData('old', undefined), member('new', [0, 1, 2, 3])])
  assertBalanced(after, 6)
  assert.deepEqual(after.get('new'), [0, 1, 2])
})

test('a rolling restart moves only the restarted member\'s partitions, and they come back to it', () => {
  // Each restart: the member leaves (its partitions go to the others), then rejoins with a new member id,
  // owning nothing but holding its state. A restore happens where a partition lands without local state.
  const partitions = 12
  const slots = ['w1', 'w2', 'w3']
  const local = new Map<string, Set<number>>(slots.map((slot) => [slot, new Set()]))
  let generation = 0
  let current = new Map<string, number[]>()
  const rebalance = (present: string[], restarted: number) => {
    generation++
    const members = present.map((slot) => {
      const owned = current.get(slot) ?? []
      // Member ids change on every restart; the assignor never relies on them staying the same.
      return member(`${slot}-${restarted}`, owned, [...(local.get(slot) as Set<number>)], owned.length > 0 ? generation - 1 : -1)
    })
    const next = new Map([...assignSticky(partitions, members)].map(([id, list]) => [id.split('-')[0] as string, list]))
    assertBalanced(next, partitions)
    let restores = 0
    for (const [slot, list] of next) {
      for (const p of list) if (!(local.get(slot) as Set<number>).has(p)) restores++
      for (const p of list) (local.get(slot) as Set<number>).add(p)
    }
    const result = { restores, moved: moved(current, next) }
    current = next
    return result
  }
  rebalance(slots, 0)
  const initial = current
  let restores = 0
  for (const [i, slot] of slots.entries()) {
    const leave = rebalance(slots.filter((s) => s !== slot), i)
    current.delete(slot)
    const back = rebalance(slots, i + 1)
    assert.equal(leave.moved, 4, `${slot} leaving moves its 4 partitions`)
    assert.equal(back.moved, 4, `${slot} coming back takes 4 partitions back`)
    assert.equal(back.restores, 0, `${slot} comes back to partitions whose state it holds`)
    restores += leave.restores
    // The first restart: nobody else holds state of the member's partitions, so it gets exactly them back.
    if (i === 0) assert.deepEqual(current, initial)
  }
  assert.ok(restores <= 12, `only hand-overs to stand-ins restore (${restores})`)
})
