// Consumer-group membership (classic protocol): join, heartbeats, rebalances, leave. Fetching is separate
// (reader.ts), so the owner of the membership decides per partition where to read from.
import { Consumer } from '@platformatic/kafka'
import type { GroupPartitionsAssigner, GroupPartitionsAssignments, GroupProtocolsMetadataCallback } from '@platformatic/kafka'

import { channels, publish } from '../core/diagnostics.ts'
import { WeirError } from '../core/errors.ts'
import { baseClientOptions, stopRetryingFatalErrors, validateClientOptions, wrapKafkaError } from './convert.ts'
import { assignSticky, decodeStickyUserData, encodeStickyUserData } from './sticky-assignor.ts'
import type { KafkaClientOptions, TopicPartition } from './types.ts'

export interface GroupMemberOptions extends KafkaClientOptions {
  groupId: string
  topics: readonly string[]
  /** Session timeout: how long a silent member keeps its partitions (default 10 s). */
  sessionTimeoutMs?: number
  heartbeatIntervalMs?: number
  rebalanceTimeoutMs?: number
  /**
   * 'co-partitioned' (default) gives partition N of every subscribed topic to the same member, which
   * tasks that join co-partitioned sources need, and is sticky (sticky-assignor.ts); 'round-robin' spreads
   * topic-partitions one by one.
   */
  assignment?: 'co-partitioned' | 'round-robin'
  /**
   * Static membership (Kafka's `group.instance.id`): a member that comes back with the same id within the
   * session timeout gets its partitions back without a rebalance. A static member never sends LeaveGroup
   * (Kafka's rule), so `leave()` does nothing and its partitions move only after the session timeout.
   */
  groupInstanceId?: string
  /**
   * Partition indexes this member holds local state for (co-partitioned assignment): told to the leader at
   * every join, so a partition that has to move goes where its state already is.
   */
  localPartitions?: () => readonly number[] | Promise<readonly number[]>
}

export interface GroupGeneration {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string | null
  readonly coordinatorId: number | null
}

export interface GroupMember {
  readonly groupId: string
  /** Joins the group; resolves with the first assignment. */
  join(): Promise<TopicPartition[]>
  assignments(): TopicPartition[]
  generation(): GroupGeneration
  /** Called after every (re)join with the new assignment, and the generation it belongs to. */
  onAssignment(listener: (partitions: TopicPartition[], generation: GroupGeneration) => void): () => void
  /** Called when the group starts rebalancing (the current assignment is about to be revoked). */
  onRebalance(listener: () => void): () => void
  /**
   * Leaves the group so partitions move at once (instead of after the session timeout). A static member
   * (`groupInstanceId`) does not leave: its partitions wait for it until the session timeout.
   */
  leave(): Promise<void>
  close(): Promise<void>
}

interface GroupInternals {
  client: Consumer<Buffer, Buffer, Buffer, Buffer>
  current(): GroupGeneration
}

const internals = new WeakMap<object, GroupInternals>()

/** For kafka/ only: the platformatic client and generation behind a group member or consumer. */
export function groupInternals(owner: object): GroupInternals {
  const found = internals.get(owner)
  if (found === undefined) throw new WeirError('WEIR_ERR_INVALID_OPTIONS', 'expected a consumer or group member created by weir')
  return found
}

export function registerGroupInternals(owner: object, value: GroupInternals): void {
  internals.set(owner, value)
}

/** How long join() keeps trying while the group coordinator is unavailable, ms. */
const JOIN_TIMEOUT_MS = 60_000

export function createGroupMember(options: GroupMemberOptions): GroupMember {
  const violations: string[] = []
  if (typeof options.groupId !== 'string' || options.groupId.length === 0) violations.push('groupId must be a non-empty string')
  if (!Array.isArray(options.topics) || options.topics.length === 0) violations.push('topics must be a non-empty array')
  for (const key of ['sessionTimeoutMs', 'heartbeatIntervalMs', 'rebalanceTimeoutMs'] as const) {
    const value = options[key]
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) violations.push(`${key} must be a positive integer`)
  }
  if (options.assignment !== undefined && options.assignment !== 'co-partitioned' && options.assignment !== 'round-robin') {
    violations.push("assignment must be 'co-partitioned' or 'round-robin'")
  }
  if (options.rebalanceTimeoutMs !== undefined && options.rebalanceTimeoutMs < (options.sessionTimeoutMs ?? 10_000)) {
    violations.push('rebalanceTimeoutMs must be at least sessionTimeoutMs')
  }
  if (options.groupInstanceId !== undefined && !(typeof options.groupInstanceId === 'string' && /^\S+$/.test(options.groupInstanceId))) {
    violations.push('groupInstanceId must be a non-empty string without whitespace')
  }
  if (options.localPartitions !== undefined && typeof options.localPartitions !== 'function') violations.push('localPartitions must be a function')
  validateClientOptions('GroupMember', options, violations)

  const sessionTimeout = options.sessionTimeoutMs ?? 10_000
  const staticMember = options.groupInstanceId !== undefined
  // Asked at every JoinGroup: what this member owns now and where it has state, for the sticky assignor.
  const stickyUserData: GroupProtocolsMetadataCallback = async () => {
    const owned = [...new Set((client.assignments ?? []).flatMap((a) => a.partitions))]
    let local: readonly number[] = []
    try {
      local = (await options.localPartitions?.()) ?? []
    } catch {
      // Without the hint the assignment is still sticky by ownership.
    }
    return encodeStickyUserData({ generation: owned.length > 0 ? client.generationId : -1, owned, local })
  }
  const client = stopRetryingFatalErrors(new Consumer<Buffer, Buffer, Buffer, Buffer>({
    ...baseClientOptions(options, `weir-member-${options.groupId}`),
    groupId: options.groupId,
    autocommit: false,
    sessionTimeout,
    heartbeatInterval: options.heartbeatIntervalMs ?? Math.max(100, Math.floor(sessionTimeout / 5)),
    // The client refuses a rebalance timeout below the session timeout: the default follows a long session timeout.
    rebalanceTimeout: options.rebalanceTimeoutMs ?? Math.max(30_000, sessionTimeout),
    ...(staticMember ? { groupInstanceId: options.groupInstanceId } : {}),
    // The protocol keeps the client's default name ('roundrobin'), so members of earlier weir versions (which send
    // no userData: they own nothing as far as the sticky assignor knows) can share the group during an upgrade.
    ...(options.assignment === 'round-robin' ? {} : { partitionAssigner: coPartitionedAssigner, protocolsMetadata: stickyUserData }),
  }))
  const assignmentListeners = new Set<(partitions: TopicPartition[], generation: GroupGeneration) => void>()
  const rebalanceListeners = new Set<() => void>()
  const current = (): GroupGeneration => ({
    groupId: client.groupId,
    generationId: client.generationId,
    memberId: client.memberId,
    coordinatorId: client.coordinatorId,
  })
  const assignments = (): TopicPartition[] =>
    (client.assignments ?? []).flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition })))
  client.on('consumer:group:join', () => {
    const partitions = assignments()
    const generation = current()
    for (const listener of assignmentListeners) listener(partitions, generation)
  })
  client.on('consumer:group:rebalance', () => {
    for (const listener of rebalanceListeners) listener()
  })
  client.on('consumer:heartbeat:error', (payload: { error: unknown }) => {
    publish(channels.kafkaClientError, { client: 'consumer', clientId: options.clientId ?? options.groupId, error: payload.error })
  })
  let closed = false

  const member: GroupMember = {
    groupId: options.groupId,
    async join() {
      if (closed) throw new WeirError('WEIR_ERR_CLOSED', 'GroupMember is closed')
      client.topics.trackAll(...options.topics)
      // A coordinator that is loading or moving (a cluster just started, a broker restarted) fails the client's own
      // retries within seconds: the join tries again for JOIN_TIMEOUT_MS, unless the error is one no retry fixes.
      const deadline = Date.now() + JOIN_TIMEOUT_MS
      for (let attempt = 1; ; attempt++) {
        try {
          await client.joinGroup({})
          return assignments()
        } catch (error) {
          const wrapped = wrapKafkaError(error, `joinGroup(${options.groupId})`, { operation: 'Read', group: options.groupId, topics: options.topics })
          if (closed || wrapped.code !== 'WEIR_ERR_KAFKA' || Date.now() >= deadline) throw wrapped
          publish(channels.kafkaClientError, { client: 'consumer', clientId: options.clientId ?? options.groupId, error: wrapped })
          await new Promise((r) => setTimeout(r, Math.min(250 * attempt, 2000)))
        }
      }
    },
    assignments,
    generation: current,
    onAssignment(listener) {
      assignmentListeners.add(listener)
      return () => assignmentListeners.delete(listener)
    },
    onRebalance(listener) {
      rebalanceListeners.add(listener)
      return () => rebalanceListeners.delete(listener)
    },
    async leave() {
      if (client.memberId === null || staticMember) return
      try {
        await client.leaveGroup()
      } catch {
        // Leaving is best effort: the session timeout moves the partitions anyway.
      }
    },
    async close() {
      if (closed) return
      closed = true
      assignmentListeners.clear()
      rebalanceListeners.clear()
      // Closing the connections first makes the client skip its LeaveGroup (it only sends one over an open
      // coordinator connection): a static member keeps its place in the group until the session timeout.
      if (staticMember) await client.connections.close().catch(() => {})
      await client.close(true).catch(() => {})
    },
  }
  registerGroupInternals(member, { client, current })
  return member
}

/** Partition N of every topic to the same member, sticky and balanced over partition indexes (sticky-assignor.ts). */
const coPartitionedAssigner: GroupPartitionsAssigner = (_current, members, topics, metadata) => {
  const counts = new Map([...topics].sort().map((topic) => [topic, metadata.topics.get(topic)?.partitionsCount ?? 0]))
  const maxPartitions = Math.max(0, ...counts.values())
  const subscriptions = [...members.values()].map((m) =>
    decodeStickyUserData(m.memberId, typeof m.metadata === 'string' ? Buffer.from(m.metadata) : m.metadata),
  )
  const result: GroupPartitionsAssignments[] = []
  for (const [memberId, partitions] of assignSticky(maxPartitions, subscriptions)) {
    const assignments = new Map<string, { topic: string; partitions: number[] }>()
    for (const [topic, count] of counts) {
      const mine = partitions.filter((p) => p < count)
      if (mine.length > 0) assignments.set(topic, { topic, partitions: mine })
    }
    result.push({ memberId, assignments })
  }
  return result
}
