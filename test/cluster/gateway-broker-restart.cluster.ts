// The gateway through broker restarts on a local 3-node cluster (replication factor 3, min.insync.replicas 2): its
// command writer and its readers ride through. A command sent while its partition's leader is down waits and is
// acked once a new leader is elected; one that cannot be written within the gateway's commandTimeoutMs (two of
// three brokers down) gets a coded, retriable error frame, never silence, and the same requestId sent again after
// the restart is acked and answered. Results written after the restart reach the socket.
// Its own command (`npm run test:cluster`), not part of `npm test`: the file name does not end in .test.ts.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { createClusterView } from '../../kafka/index.ts'
import type { ClusterView } from '../../kafka/index.ts'
import type { ErrorFrame } from '../../gateway/protocol.ts'
import { startLocalBroker } from '../../scripts/infra/kafka.ts'
import type { KafkaBroker, LocalNode } from '../../scripts/infra/kafka.ts'
import { createProgress } from '../../scripts/infra/progress.ts'
import { cleanups, createGatewayTopics, openSocket, startGateway, startTestWorker, testCatalog } from '../gateway/helpers.ts'
import type { TestSocket, TestTopics, TestWorker } from '../gateway/helpers.ts'
import { closeAdmin } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'

let cluster: KafkaBroker
let view: ClusterView
const files = cleanups()

before(
  async () => {
    cluster = await startLocalBroker(createProgress('gateway-broker-restart'), { nodes: 3 })
    // The gateway harness (topics, test worker) reads the brokers from here.
    process.env.KAFKA_BOOTSTRAP_SERVERS = cluster.brokers.join(',')
    view = createClusterView({ brokers: cluster.brokers, clientId: 'gateway-broker-restart-view' })
  },
  { timeout: 300_000 },
)

after(async () => {
  await files.run()
  await closeAdmin().catch(() => {})
  await view?.close().catch(() => {})
  await cluster?.stop()
})

function node(id: number): LocalNode {
  const found = cluster.nodes?.find((n) => n.id === id)
  if (found === undefined) throw new Error(`no local node ${id}`)
  return found
}

/** Restarts `killed` and waits until every partition of the topics has all three replicas in sync again. */
async function restartAndResync(killed: readonly LocalNode[], topics: TestTopics): Promise<void> {
  for (const n of killed) await n.restart()
  await waitFor(
    async () => {
      for (const topic of [topics.commands, topics.results]) if (!(await view.inSyncReplicas(topic).catch(() => [])).every((isr) => isr.length === 3)) return false
      return true
    },
    { timeoutMs: 180_000, intervalMs: 1000, what: 'every node back in sync' },
  )
}

const place = (socket: TestSocket, requestId: string) => socket.send({ type: 'command', path: 'orders/sales/place', requestId, payload: { orderId: `order-${requestId}`, qty: 1 }, ttlMs: 60_000 })

/** The worker answers the first copy of the command; the socket must then get its result. */
async function answered(socket: TestSocket, worker: TestWorker, requestId: string): Promise<void> {
  const command = await worker.command((c) => c.requestId === requestId, 120_000)
  await worker.reply(command, { placed: requestId })
  const result = await socket.expect('result', (f) => f.requestId === requestId, 120_000)
  assert.deepEqual(result.payload, { placed: requestId })
}

/** Frames of each kind that answer `requestId` (acks and errors). */
function answers(socket: TestSocket, requestId: string): { acks: number; errors: ErrorFrame[] } {
  const mine = socket.frames.filter((f) => (f as { requestId?: string }).requestId === requestId)
  return { acks: mine.filter((f) => f.type === 'ack').length, errors: mine.filter((f): f is ErrorFrame => f.type === 'error') }
}

describe('the gateway through broker restarts on a 3-node cluster', { timeout: 900_000 }, () => {
  test('commands sent while their partition leader is down wait and are acked once a new leader is elected; results after the restart reach the socket', async () => {
    const topics = await createGatewayTopics(files, 1)
    const gateway = await startGateway(files, { catalog: testCatalog(topics), brokers: cluster.brokers })
    const worker = await startTestWorker(files, topics)
    const socket = await openSocket(files, gateway.port)
    socket.send({ type: 'resume', offsets: [] })
    await socket.expect('resumed')
    place(socket, 'before')
    await socket.expect('ack', (f) => f.requestId === 'before', 60_000)
    await answered(socket, worker, 'before')

    const leader = node((await view.leaders(topics.commands))[0] as number)
    await leader.kill('SIGKILL')
    const during = Array.from({ length: 5 }, (_, i) => `during-${i}`)
    for (const requestId of during) place(socket, requestId)
    // Written once the controller has fenced the dead leader and elected another (about broker.session.timeout.ms).
    for (const requestId of during) await socket.expect('ack', (f) => f.requestId === requestId, 120_000)
    assert.notEqual((await view.leaders(topics.commands))[0], leader.id)

    await restartAndResync([leader], topics)
    for (const requestId of during) await answered(socket, worker, requestId)
    place(socket, 'after')
    await socket.expect('ack', (f) => f.requestId === 'after', 60_000)
    await answered(socket, worker, 'after')
    // Each command answered exactly once, none with an error.
    for (const requestId of ['before', ...during, 'after']) assert.deepEqual({ requestId, ...answers(socket, requestId) }, { requestId, acks: 1, errors: [] })
  })

  test('a command that cannot be written within commandTimeoutMs (two of three brokers down) gets a retriable WEIR_ERR_KAFKA frame; sent again after the restart it is acked and answered', async () => {
    const topics = await createGatewayTopics(files, 1)
    const gateway = await startGateway(files, { catalog: testCatalog(topics), brokers: cluster.brokers, commandTimeoutMs: 3000 })
    const worker = await startTestWorker(files, topics)
    const socket = await openSocket(files, gateway.port)
    socket.send({ type: 'resume', offsets: [] })
    await socket.expect('resumed')
    place(socket, 'warm-up')
    await socket.expect('ack', (f) => f.requestId === 'warm-up', 60_000)
    await answered(socket, worker, 'warm-up')

    // Below min.insync.replicas (and without a controller quorum): nothing can be written until a node is back.
    const leader = (await view.leaders(topics.commands))[0] as number
    const down = [node(leader), node(leader === 1 ? 2 : 1)]
    for (const n of down) await n.kill('SIGKILL')
    const sentAt = Date.now()
    place(socket, 'outage')
    const error = await socket.expect('error', (f) => f.requestId === 'outage', 60_000)
    assert.equal(error.code, 'WEIR_ERR_KAFKA')
    assert.equal(error.details?.retriable, true)
    assert.ok(Date.now() - sentAt >= 3000, `the command waited its commandTimeoutMs before failing (${Date.now() - sentAt} ms)`)

    await restartAndResync(down, topics)
    // Sending it again is safe: the same envelope id, so a copy an earlier attempt left behind is deduped by the
    // worker. The client sends it again after each retriable error, as the protocol says, until it is acked; every
    // attempt gets exactly one answer.
    for (let attempt = 1; answers(socket, 'outage').acks === 0; attempt++) {
      assert.ok(attempt <= 20, `acked within 20 attempts after the restart: ${JSON.stringify(answers(socket, 'outage'))}`)
      const before = answers(socket, 'outage')
      place(socket, 'outage')
      await waitFor(
        () => {
          const now = answers(socket, 'outage')
          return now.acks + now.errors.length === before.acks + before.errors.length + 1
        },
        { timeoutMs: 60_000, what: `the answer to attempt ${attempt}` },
      )
      for (const e of answers(socket, 'outage').errors) assert.deepEqual([e.code, e.details?.retriable], ['WEIR_ERR_KAFKA', true])
      if (answers(socket, 'outage').acks === 0) await new Promise((r) => setTimeout(r, 2000))
    }
    await answered(socket, worker, 'outage')
    const { acks, errors } = answers(socket, 'outage')
    assert.equal(acks, 1)
    assert.ok(errors.length >= 1 && errors[0] === error, `the first answer was the outage's error: ${JSON.stringify(errors)}`)
    const copies = worker.commands.filter((c) => c.requestId === 'outage')
    assert.ok(copies.length >= 1 && new Set(copies.map((c) => c.id)).size === 1, `every copy of the command has the same envelope id: ${copies.map((c) => c.id).join(', ')}`)
  })
})
