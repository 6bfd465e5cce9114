// Producers through broker failures on a local 3-node cluster (replication factor 3, min.insync.replicas 2):
// the broker leading a partition, or coordinating a transaction or a group, is SIGKILLed while a producer
// sends; every send completes once a new leader or coordinator is elected, nothing is lost and nothing is
// written twice. One cluster for the file (it takes about half a minute to start).
// Its own command (`npm run test:cluster`, 3-10 minutes on 2 cores), not part of `npm test`: the file name does not end in .test.ts.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { createAdmin, createClusterView, createGroupMember, createPartitionReader, createProducer } from '../../kafka/index.ts'
import type { ClusterView, ConsumedRecord, KafkaAdmin, KafkaTransaction, OutgoingRecord } from '../../kafka/index.ts'
import { startLocalBroker } from '../../scripts/infra/kafka.ts'
import type { KafkaBroker, LocalNode } from '../../scripts/infra/kafka.ts'
import { createProgress } from '../../scripts/infra/progress.ts'
import { uniqueName } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'

let cluster: KafkaBroker
let admin: KafkaAdmin
let view: ClusterView

before(
  async () => {
    cluster = await startLocalBroker(createProgress('broker-failure'), { nodes: 3 })
    admin = createAdmin({ brokers: cluster.brokers, clientId: 'broker-failure-admin' })
    view = createClusterView({ brokers: cluster.brokers, clientId: 'broker-failure-view' })
  },
  { timeout: 300_000 },
)

after(async () => {
  await view?.close().catch(() => {})
  await admin?.close().catch(() => {})
  await cluster?.stop()
})

function node(id: number): LocalNode {
  const found = cluster.nodes?.find((n) => n.id === id)
  if (found === undefined) throw new Error(`no local node ${id}`)
  return found
}

async function newTopic(prefix: string, partitions: number): Promise<string> {
  const name = uniqueName(prefix)
  await admin.createTopics([{ name, partitions, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } }])
  return name
}

/** Restarts killed nodes and waits until every node is back in the in-sync replicas of `topic`, so the next case starts whole. */
async function restartAndResync(killed: Iterable<LocalNode>, topic: string): Promise<void> {
  for (const n of killed) await n.restart()
  await waitFor(async () => (await view.inSyncReplicas(topic).catch(() => [])).every((isr) => isr.length === 3) || undefined, {
    timeoutMs: 120_000,
    what: `every node back in sync for ${topic}`,
  })
}

/** Every record of `topic` up to its end offsets (read_committed: the last stable offsets). */
async function readAll(topic: string, partitions: number): Promise<ConsumedRecord[]> {
  const reader = createPartitionReader({ brokers: cluster.brokers, maxWaitMs: 100, isolation: 'read_committed' })
  try {
    const all = Array.from({ length: partitions }, (_, partition) => ({ topic, partition }))
    const ends = new Map((await reader.offsets(all, 'latest')).map((o) => [o.partition, o.offset]))
    const positions = new Map((await reader.offsets(all, 'earliest')).map((o) => [o.partition, o.offset]))
    const records: ConsumedRecord[] = []
    const open = () => [...positions].filter(([p, offset]) => offset < (ends.get(p) ?? 0n)).map(([partition, offset]) => ({ topic, partition, offset }))
    for (let todo = open(); todo.length > 0; todo = open()) {
      for (const batch of await reader.fetch(todo)) {
        records.push(...batch.records)
        positions.set(batch.partition, batch.nextOffset)
      }
    }
    return records
  } finally {
    await reader.close()
  }
}

/** Each value exactly once: the lists of missing and of duplicated ones are empty. */
function assertExactlyOnce(records: readonly ConsumedRecord[], expected: readonly string[]): void {
  const seen = new Map<string, number>()
  for (const r of records) {
    const value = r.value?.toString('utf8') ?? ''
    seen.set(value, (seen.get(value) ?? 0) + 1)
  }
  const missing = expected.filter((v) => !seen.has(v))
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([v]) => v)
  const unexpected = [...seen.keys()].filter((v) => !expected.includes(v))
  assert.deepEqual({ missing, duplicated, unexpected }, { missing: [], duplicated: [], unexpected: [] })
}

const batchOf = (topic: string, round: number, size: number, partition?: number): OutgoingRecord[] =>
  Array.from({ length: size }, (_, i) => ({ topic, key: `k${round}-${i}`, value: `v${round}-${i}`, ...(partition === undefined ? {} : { partition }) }))

/**
 * Runs `rounds` transactions of `size` records each. A commit that fails is handled as the stream runtime does:
 * the producer is closed and a new one with the same transactional id fences it (aborting whatever it left open),
 * and the round is sent again. Returns how many rounds needed that.
 */
async function transactionalRounds(
  topic: string,
  rounds: number,
  size: number,
  during: (round: number) => void | Promise<void>,
  beforeCommit?: (tx: KafkaTransaction, round: number) => Promise<void>,
  transactionalId = uniqueName('broker-failure-tx'),
): Promise<number> {
  const open = () => createProducer({ brokers: cluster.brokers, transactionalId, clientId: `${transactionalId}-producer` })
  let producer = open()
  let replays = 0
  try {
    for (let round = 0; round < rounds; round++) {
      await during(round)
      for (;;) {
        try {
          const tx = await producer.beginTransaction()
          await tx.send(batchOf(topic, round, size))
          await beforeCommit?.(tx, round)
          await tx.commit()
          break
        } catch {
          replays++
          await producer.close().catch(() => {})
          producer = open()
        }
      }
    }
  } finally {
    await producer.close().catch(() => {})
  }
  return replays
}

describe('producers through a broker SIGKILL on a 3-node cluster', { timeout: 600_000 }, () => {
  test('an idempotent producer rides through the death of a partition leader: every send completes, nothing lost, nothing twice', async () => {
    const topic = await newTopic('bf-idempotent', 3)
    const leader = (await view.leaders(topic))[0] as number
    const killed = node(leader)
    const producer = createProducer({ brokers: cluster.brokers, clientId: uniqueName('bf-idempotent-producer') })
    const expected: string[] = []
    let killing: Promise<void> | undefined
    try {
      for (let round = 0; round < 40; round++) {
        const batch = batchOf(topic, round, 25)
        expected.push(...batch.map((r) => r.value as string))
        const sent = producer.send(batch)
        if (round === 8) killing = killed.kill('SIGKILL')
        await sent
      }
      await killing
      // The partition has a new leader, elected while the producer kept sending.
      assert.notEqual((await view.leaders(topic))[0], leader)
    } finally {
      await producer.close()
    }
    await restartAndResync([killed], topic)
    assertExactlyOnce(await readAll(topic, 3), expected)
  })

  test('an idempotent producer waits out an outage longer than its client would retry alone (two of three brokers down for 20 s)', async () => {
    const topic = await newTopic('bf-outage', 1)
    const leader = (await view.leaders(topic))[0] as number
    const down = [node(leader), node(leader === 1 ? 2 : 1)]
    const producer = createProducer({ brokers: cluster.brokers, clientId: uniqueName('bf-outage-producer') })
    try {
      await producer.send(batchOf(topic, 0, 10))
      for (const n of down) await n.kill('SIGKILL')
      // Neither a leader nor min.insync.replicas (nor a controller quorum) for 20 s: @platformatic/kafka's own
      // 8 retries are spent in about 6 s; the send must keep trying for the delivery timeout.
      const sending = producer.send(batchOf(topic, 1, 10))
      const outcome = sending.then(
        () => 'sent',
        (error: unknown) => error,
      )
      await new Promise((r) => setTimeout(r, 20_000))
      await (down[1] as LocalNode).restart()
      assert.equal(await outcome, 'sent')
    } finally {
      await producer.close()
    }
    await restartAndResync(down, topic)
    assertExactlyOnce(await readAll(topic, 1), [0, 1].flatMap((round) => batchOf(topic, round, 10).map((r) => r.value as string)))
  })

  test('a transactional producer rides through the death of the partition leader: each transaction committed once', async (t) => {
    const topic = await newTopic('bf-tx-leader', 1)
    const killed = node((await view.leaders(topic))[0] as number)
    let killing: Promise<void> | undefined
    const replays = await transactionalRounds(topic, 30, 20, (round) => {
      if (round === 5) killing = killed.kill('SIGKILL')
    })
    await killing
    await restartAndResync([killed], topic)
    assertExactlyOnce(
      await readAll(topic, 1),
      Array.from({ length: 30 }, (_, round) => batchOf(topic, round, 20).map((r) => r.value as string)).flat(),
    )
    t.diagnostic(`rounds replayed after a failed commit: ${replays}`)
  })

  test('a transactional producer follows a moved transaction coordinator and group coordinator: offsets and records committed once', async (t) => {
    const topic = await newTopic('bf-tx-coordinator', 1)
    const source = await newTopic('bf-tx-source', 1)
    const groupId = uniqueName('bf-group')
    const member = createGroupMember({ brokers: cluster.brokers, groupId, topics: [source], sessionTimeoutMs: 30_000 })
    await member.join()
    const transactionalId = uniqueName('bf-tx-coord')
    const transactionCoordinator = node(await view.coordinator('transaction', transactionalId))
    const killed = new Set<LocalNode>()
    let groupCoordinator: LocalNode | undefined
    let replays: number
    try {
      replays = await transactionalRounds(
        topic,
        20,
        10,
        async (round) => {
          if (round === 9) {
            await transactionCoordinator.restart()
            await waitFor(async () => (await view.brokers()).includes(transactionCoordinator.id) || undefined, { timeoutMs: 120_000, what: 'transaction coordinator back' })
          }
        },
        async (tx, round) => {
          // Between the sends and the commit: AddOffsetsToTxn, TxnOffsetCommit and EndTxn meet a dead coordinator.
          if (round === 4 && !killed.has(transactionCoordinator)) {
            killed.add(transactionCoordinator)
            await transactionCoordinator.kill('SIGKILL')
          }
          if (round === 14 && groupCoordinator === undefined) {
            groupCoordinator = node(await view.coordinator('group', groupId))
            killed.add(groupCoordinator)
            await groupCoordinator.kill('SIGKILL')
          }
          await tx.sendOffsets(member, [{ topic: source, partition: 0, offset: BigInt(round + 1) }])
        },
        transactionalId,
      )
    } finally {
      await member.close().catch(() => {})
    }
    await restartAndResync(killed, topic)
    assertExactlyOnce(
      await readAll(topic, 1),
      Array.from({ length: 20 }, (_, round) => batchOf(topic, round, 10).map((r) => r.value as string)).flat(),
    )
    const committed = await admin.committedOffsets(groupId, source)
    assert.deepEqual(
      committed.map((c) => c.offset),
      [20n],
    )
    t.diagnostic(`transaction coordinator ${transactionCoordinator.id}, group coordinator ${groupCoordinator?.id}; rounds replayed after a failed commit: ${replays}`)
  })

  test('a reader keeps reading the partitions of live leaders while one leader is dead, and its partitions once a new leader is elected', async () => {
    const topic = await newTopic('bf-reader', 3)
    const leaders = await view.leaders(topic)
    const producer = createProducer({ brokers: cluster.brokers, clientId: uniqueName('bf-reader-producer') })
    try {
      for (let partition = 0; partition < 3; partition++) await producer.send(batchOf(topic, partition, 10, partition))
    } finally {
      await producer.close()
    }
    const killed = node(leaders[0] as number)
    const others = [1, 2].filter((p) => leaders[p] !== leaders[0])
    const reader = createPartitionReader({ brokers: cluster.brokers, maxWaitMs: 100 })
    const read = new Map<number, number>()
    try {
      // Metadata cached while every leader lives: the first fetch after the kill still goes to the dead one.
      await reader.offsets([{ topic, partition: 0 }], 'latest')
      await killed.kill('SIGKILL')
      const positions = () => [0, 1, 2].map((partition) => ({ topic, partition, offset: 0n }))
      const first = await reader.fetch(positions())
      for (const p of others) assert.ok(first.some((b) => b.partition === p && b.records.length === 10), `partition ${p} (leader ${leaders[p]}) read while node ${killed.id} is dead`)
      await waitFor(
        async () => {
          const batches = await reader.fetch(positions()).catch(() => [])
          for (const b of batches) read.set(b.partition, b.records.length)
          return read.get(0) === 10 || undefined
        },
        { timeoutMs: 120_000, what: 'partition 0 read from its new leader' },
      )
    } finally {
      await reader.close()
    }
    assert.notEqual((await view.leaders(topic))[0], leaders[0])
    await restartAndResync([killed], topic)
  })
})
