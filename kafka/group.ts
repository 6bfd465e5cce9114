// Consumer-group membership (classic protocol): join, heartbeats, rebalances, leave. Fetching is separate
// (reader.ts), so the owner of the membership decides per partition where to read from.
import { Consumer } from '@platformatic/kafka'
import type { GroupPartitionsAssigner, GroupPartitionsAssignments } from '@platformatic/kafka'

import { channels, publish } from '../core/diagnostics.ts'
import { WeirError } from '../core/errors.ts'
import { baseClientOptions, stopRetryingFatalErrors, validateClientOptions, wrapKafkaError } from './convert.ts'
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
   * tasks that join co-partitioned sources need; 'round-robin' spreads topic-partitions one by one.
   */
  assignment?: 'co-partitioned' | 'round-robin'
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
  /** Leaves the group so partitions move at once (instead of after the session timeout). */
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
  validateClientOptions('GroupMember', options, violations)

  const sessionTimeout = options.sessionTimeoutMs ?? 10_000
  const client = stopRetryingFatalErrors(new Consumer<Buffer, Buffer, Buffer, Buffer>({
    ...baseClientOptions(options, `weir-member-${options.groupId}`),
    groupId: options.groupId,
    autocommit: false,
    sessionTimeout,
    heartbeatInterval: options.heartbeatIntervalMs ?? Math.max(100, Math.floor(sessionTimeout / 5)),
    rebalanceTimeout: options.rebalanceTimeoutMs ?? 30_000,
    ...(options.assignment === 'round-robin' ? {} : { partitionAssigner: coPartitionedAssigner }),
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
      if (client.memberId === null) return
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
      await client.close(true).catch(() => {})
    },
  }
  registerGroupInternals(member, { client, current })
  return member
}

/** Partition N of every topic to the same member; partition indexes spread round-robin over sorted members. */
const coPartitionedAssigner: GroupPartitionsAssigner = (_current, members, topics, metadata) => {
  const memberIds = [...members.keys()].sort()
  const result = new Map<string, GroupPartitionsAssignments>(
    memberIds.map((memberId) => [memberId, { memberId, assignments: new Map() }]),
  )
  const maxPartitions = Math.max(0, ...[...topics].map((t) => metadata.topics.get(t)?.partitionsCount ?? 0))
  for (let partition = 0; partition < maxPartitions; partition++) {
    const memberId = memberIds[partition % memberIds.length]
    if (memberId === undefined) continue
    const target = result.get(memberId)
    if (target === undefined) continue
    for (const topic of [...topics].sort()) {
      const count = metadata.topics.get(topic)?.partitionsCount ?? 0
      if (partition >= count) continue
      const entry = target.assignments.get(topic) ?? { topic, partitions: [] as number[] }
      entry.partitions.push(partition)
      target.assignments.set(topic, entry)
    }
  }
  return [...result.values()]
}
