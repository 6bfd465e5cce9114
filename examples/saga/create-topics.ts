// Creates the topics of the orders service and of the saga example (idempotent):
//   node examples/saga/create-topics.ts [--partitions 3]
// Brokers from KAFKA_BOOTSTRAP_SERVERS (TLS and SASL from WEIR_KAFKA_CONFIG), prefix from WEIR_ORDERS_PREFIX (default `orders`).
import { parseArgs } from 'node:util'

import { createAdmin, kafkaFromEnvironment } from '../../kafka/index.ts'
import type { KafkaConnection } from '../../kafka/index.ts'
import { createOrdersTopics } from '../orders/create-topics.ts'
import { prefixFromEnv } from '../orders/service.ts'
import { sagaExampleTopicSpecs } from './services.ts'

/** Creates the orders topics and the saga example's; returns every name. */
export async function createSagaExampleTopics(options: { brokers: readonly string[]; connection?: KafkaConnection; prefix: string; partitions?: number }): Promise<string[]> {
  const orders = await createOrdersTopics(options)
  const specs = sagaExampleTopicSpecs(options.prefix, options.partitions)
  const admin = createAdmin({ brokers: [...options.brokers], connection: options.connection, clientId: 'weir-saga-setup' })
  try {
    await admin.createTopics(specs)
  } finally {
    await admin.close()
  }
  return [...orders, ...specs.map((s) => s.name)]
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { partitions: { type: 'string', default: '3' } } })
  const { brokers, connection } = kafkaFromEnvironment(process.env)
  const names = await createSagaExampleTopics({ brokers, connection, prefix: prefixFromEnv(), partitions: Number(values.partitions) })
  process.stdout.write(`topics ready on ${brokers.join(',')}: ${names.join(', ')}\n`)
}
