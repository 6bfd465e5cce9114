// The real command service for gateway tests: the orders example (examples/orders) run by the Kafka runtime on
// the test broker, exactly as `weir worker examples/orders/topology.ts` runs it, on topics of its own. The fake
// worker of helpers.ts stays for tests about the gateway alone; these are for what a client sees end to end.
import { fileURLToPath } from 'node:url'

import type { CommandCatalog } from '../../commands/catalog.ts'
import { decodeEnvelope } from '../../envelope/codec.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import { createOrdersTopics } from '../../examples/orders/create-topics.ts'
import { ORDERS_PREFIX_ENV, ordersRegistry, ordersService } from '../../examples/orders/service.ts'
import type { CommandService, CommandServiceTopics } from '../../processors/command-service.ts'
import type { StreamRuntime } from '../../topology/runtime/runtime-options.ts'
import type { ConsumedRecord, TopicPartitionOffset } from '../../kafka/index.ts'
import { admin, brokers, readAll, uniqueName } from '../helpers/kafka.ts'
import { waitFor } from '../helpers/wait.ts'
import { startTestRuntime } from '../helpers/runtime.ts'
import type { Cleanup } from './helpers.ts'

/** The orders example's catalog module, for gateway processes (`--catalog`, with WEIR_ORDERS_PREFIX set). */
export const ORDERS_CATALOG_MODULE = fileURLToPath(new URL('../../examples/orders/catalog.ts', import.meta.url))

export interface OrdersWorker {
  readonly prefix: string
  readonly applicationId: string
  readonly service: CommandService
  readonly topics: CommandServiceTopics
  /** The gateway's catalog: built from the registry the worker routes with. */
  readonly catalog: CommandCatalog
  readonly runtime: StreamRuntime
  /** Environment for a gateway process serving this service (its catalog's topic prefix). */
  readonly env: Record<string, string>
  /** How many times the slow handler ran (it is the only handler that sleeps). */
  slowRuns(): number
  /** Waits until the service committed its consumption of the commands topic up to `offsets` (next offsets). */
  committedPast(offsets: readonly TopicPartitionOffset[]): Promise<void>
  /** Every committed record of a topic of the service (to its end offsets now), decoded. */
  read(topic: string): Promise<Array<{ record: ConsumedRecord; envelope: Envelope }>>
}

export async function startOrdersWorker(t: Cleanup, options: { partitions?: number } = {}): Promise<OrdersWorker> {
  const prefix = uniqueName('gw-orders')
  const applicationId = `${prefix}-service`
  let slowRuns = 0
  const sleep = (ms: number) => {
    slowRuns++
    return new Promise<void>((resolve) => setTimeout(resolve, ms))
  }
  const service = ordersService({ prefix, sleep })
  await createOrdersTopics({ brokers: brokers(), prefix, partitions: options.partitions ?? 2 })
  const { runtime } = await startTestRuntime(t, { applicationId, topology: service.topology, stateDirPrefix: 'weir-gw-orders-' })
  // After the runtime stopped: the service's own topics, and the changelog and dead-letter topics the runtime created.
  t.after(async () => {
    const mine = (await admin().listTopics()).filter((name) => name.startsWith(prefix))
    await admin()
      .deleteTopics(mine)
      .catch(() => {})
  })
  return {
    prefix,
    applicationId,
    service,
    topics: service.topics,
    catalog: ordersRegistry({ prefix }).catalog,
    runtime,
    env: { [ORDERS_PREFIX_ENV]: prefix },
    slowRuns: () => slowRuns,
    async committedPast(offsets) {
      await waitFor(
        async () => {
          const committed = await admin().committedOffsets(applicationId, service.topics.commands)
          return offsets.every((o) => (committed.find((c) => c.partition === o.partition)?.offset ?? -1n) >= o.offset)
        },
        { timeoutMs: 30_000, intervalMs: 100, what: `the orders service to commit ${offsets.map((o) => `${o.partition}@${o.offset}`).join(', ')}` },
      )
    },
    async read(topic) {
      return (await readAll(topic)).flatMap((record) => (record.value === undefined ? [] : [{ record, envelope: decodeEnvelope(record.value) }]))
    },
  }
}
