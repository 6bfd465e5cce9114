// The group's assignment as pure logic: which member gets which partition index (partition N of every source
// topic goes together, so co-partitioned sources share a task). Sticky, like Kafka's StickyAssignor within the
// eager protocol: each member reports what it owns (and what it holds local state for) in the subscription's
// userData, and the leader keeps every partition with its owner as long as the counts stay balanced (they differ
// by at most one), moving only what it must. A partition that has to move prefers a member that still holds its
// local state (a worker restarted without static membership comes back owning nothing, but with its state).

/** What one member tells the leader when it joins. */
export interface StickyMember {
  readonly memberId: string
  /** The generation its `owned` partitions belong to (-1 when it owns none); the newest claim wins a conflict. */
  readonly generation: number
  /** Partition indexes it was assigned in that generation. */
  readonly owned: readonly number[]
  /** Partition indexes it holds local state for (owned or recently owned). */
  readonly local: readonly number[]
}

const USER_DATA_VERSION = 1

/** The subscription userData a member sends: JSON, so other tools can read it. */
export function encodeStickyUserData(data: { generation: number; owned: readonly number[]; local: readonly number[] }): Buffer {
  return Buffer.from(JSON.stringify({ v: USER_DATA_VERSION, generation: data.generation, owned: [...data.owned], local: [...data.local] }))
}

/** Reads a member's userData; empty or unreadable (a member of an earlier version) means: owns nothing. */
export function decodeStickyUserData(memberId: string, userData: Buffer | undefined | null): StickyMember {
  const nothing: StickyMember = { memberId, generation: -1, owned: [], local: [] }
  if (userData === undefined || userData === null || userData.length === 0) return nothing
  try {
    const parsed = JSON.parse(userData.toString('utf8')) as { v?: unknown; generation?: unknown; owned?: unknown; local?: unknown }
    if (parsed.v !== USER_DATA_VERSION) return nothing
    const indexes = (value: unknown) => (Array.isArray(value) ? value.filter((p): p is number => Number.isInteger(p) && (p as number) >= 0) : [])
    return {
      memberId,
      generation: Number.isInteger(parsed.generation) ? (parsed.generation as number) : -1,
      owned: indexes(parsed.owned),
      local: indexes(parsed.local),
    }
  } catch {
    return nothing
  }
}

/**
 * Assigns partition indexes 0..partitions-1 to the members: balanced (counts differ by at most one), each
 * partition kept with the member that owns it when balance allows, moved ones placed with a member holding
 * their local state when one has room. Deterministic for the same input (every member computes the same).
 */
export function assignSticky(partitions: number, members: readonly StickyMember[]): Map<string, number[]> {
  const ids = [...new Set(members.map((m) => m.memberId))].sort()
  const byId = new Map(members.map((m) => [m.memberId, m]))
  const result = new Map<string, number[]>(ids.map((id) => [id, []]))
  if (ids.length === 0 || partitions <= 0) return result
  const inRange = (p: number) => Number.isInteger(p) && p >= 0 && p < partitions

  // One owner per partition: the newest generation's claim (a member that missed a rebalance still claims its old
  // partitions), the first member id on a tie.
  const claims = new Map<number, { id: string; generation: number }>()
  for (const id of ids) {
    const member = byId.get(id) as StickyMember
    for (const p of new Set(member.owned)) {
      if (!inRange(p)) continue
      const existing = claims.get(p)
      if (existing === undefined || member.generation > existing.generation) claims.set(p, { id, generation: member.generation })
    }
  }
  const owned = new Map<string, number[]>(ids.map((id) => [id, []]))
  for (const p of [...claims.keys()].sort((a, b) => a - b)) owned.get((claims.get(p) as { id: string }).id)?.push(p)

  // Quotas: everyone `floor`, `extra` members one more. Members that already own more than `floor` get the extra
  // slots first (most owned first), so keeping their partitions costs no move; slots left over are handed out
  // while placing the partitions that must move.
  const floor = Math.floor(partitions / ids.length)
  let extras = partitions % ids.length
  const quota = new Map<string, number>(ids.map((id) => [id, floor]))
  const byOwned = [...ids].sort((a, b) => (owned.get(b) as number[]).length - (owned.get(a) as number[]).length || (a < b ? -1 : 1))
  for (const id of byOwned) {
    if (extras === 0) break
    if ((owned.get(id) as number[]).length > floor) {
      quota.set(id, floor + 1)
      extras--
    }
  }

  const local = new Map<string, Set<number>>(ids.map((id) => [id, new Set((byId.get(id) as StickyMember).local)]))
  // A member over its quota gives up first the partitions another member with room holds state for (a worker
  // that comes back from a restart gets its own partitions back), and keeps those whose state is only here.
  const takers = ids.filter((id) => (owned.get(id) as number[]).length < (quota.get(id) as number) || extras > 0)
  const warmElsewhere = (id: string, p: number) => takers.some((other) => other !== id && (local.get(other) as Set<number>).has(p))
  const unassigned: number[] = []
  for (const id of ids) {
    const mine = [...(owned.get(id) as number[])].sort((a, b) => Number(warmElsewhere(id, a)) - Number(warmElsewhere(id, b)) || a - b)
    const keep = quota.get(id) as number
    ;(result.get(id) as number[]).push(...mine.slice(0, keep))
    unassigned.push(...mine.slice(keep))
  }
  for (let p = 0; p < partitions; p++) if (!claims.has(p)) unassigned.push(p)
  unassigned.sort((a, b) => a - b)

  const room = (id: string) => {
    const count = (result.get(id) as number[]).length
    return count < (quota.get(id) as number) || (extras > 0 && count === floor)
  }
  const give = (id: string, p: number) => {
    const list = result.get(id) as number[]
    if (list.length >= (quota.get(id) as number)) {
      quota.set(id, floor + 1)
      extras--
    }
    list.push(p)
  }
  for (const p of unassigned) {
    const open = ids.filter(room)
    const warm = open.filter((id) => (local.get(id) as Set<number>).has(p))
    const candidates = warm.length > 0 ? warm : open
    // Fewest partitions first, then member id: the result does not depend on the order members joined in.
    let best = candidates[0] as string
    for (const id of candidates) if ((result.get(id) as number[]).length < (result.get(best) as number[]).length) best = id
    give(best, p)
  }
  for (const list of result.values()) list.sort((a, b) => a - b)
  return result
}
