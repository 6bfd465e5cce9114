// Produce requests go to the current leader of each of their partitions. @platformatic/kafka groups a send's
// records by leader once, then sends (and retries) each group to the leader of the group's first partition. When
// that leader dies, its partitions get new leaders, often different ones: every retry sends the whole group to
// one of them, the partitions it does not lead answer NOT_LEADER_OR_FOLLOWER, and the send retries until its
// delivery timeout (a transaction's commit until its budget) although the cluster has long recovered. Here each
// Produce call splits its records by the leaders the (refreshed) metadata names and sends one request per leader,
// merging the answers; the idempotent producer's sequence numbers are per partition, so the split changes nothing
// about duplicates.
import { kGetApi, kGetConnection, kMetadata } from '@platformatic/kafka'

type Callback<T> = (error: Error | null, value?: T) => void

interface ProduceMessage {
  readonly topic: string
  readonly partition: number
}

interface ProduceResponse {
  throttleTimeMs?: number
  responses?: unknown[]
}

type ProduceApi = (connection: unknown, acks: number, timeout: number, messages: ProduceMessage[], options: unknown, callback: Callback<ProduceResponse>) => void

interface RoutingInternals {
  [kMetadata](options: { topics: string[] }, callback: Callback<{ brokers: Map<number, unknown>; topics: Map<string, { partitions: Array<{ leader: number }> }> }>): void
  [kGetConnection](broker: unknown, callback: Callback<unknown>): void
}

export function routeProduceByLeader(client: object): void {
  const target = client as unknown as Record<symbol, (name: string, callback: Callback<unknown>) => void> & RoutingInternals
  const original = target[kGetApi] as (name: string, callback: Callback<unknown>) => void
  target[kGetApi] = function (this: unknown, name: string, callback: Callback<unknown>) {
    if (name !== 'Produce') return original.call(this, name, callback)
    original.call(this, name, (error, found) => {
      if (error) return callback(error)
      const api = found as ProduceApi
      const routed: ProduceApi = (connection, acks, timeout, messages, options, done) => {
        target[kMetadata]({ topics: [...new Set(messages.map((m) => m.topic))] }, (error, metadata) => {
          if (error || metadata === undefined) return done(error ?? new Error('no metadata'))
          const byLeader = new Map<number, ProduceMessage[]>()
          for (const message of messages) {
            const leader = metadata.topics.get(message.topic)?.partitions[message.partition]?.leader ?? -1
            const list = byLeader.get(leader)
            if (list === undefined) byLeader.set(leader, [message])
            else list.push(message)
          }
          if (byLeader.size <= 1) return api(connection, acks, timeout, messages, options, done)
          let pending = byLeader.size
          let failure: Error | null = null
          const merged: ProduceResponse = { throttleTimeMs: 0, responses: [] }
          const settle = (error: Error | null, response?: ProduceResponse) => {
            if (error) failure ??= error
            else if (response !== undefined) {
              merged.throttleTimeMs = Math.max(merged.throttleTimeMs ?? 0, response.throttleTimeMs ?? 0)
              merged.responses?.push(...(response.responses ?? []))
            }
            if (--pending === 0) done(failure, failure === null ? merged : undefined)
          }
          for (const [leader, list] of byLeader) {
            // An unknown leader (-1) yields the client's stale-metadata error: the send retries with fresh metadata.
            target[kGetConnection](metadata.brokers.get(leader), (error, leaderConnection) => {
              if (error) return settle(error)
              api(leaderConnection, acks, timeout, list, options, settle)
            })
          }
        })
      }
      callback(null, routed)
    })
  }
}
