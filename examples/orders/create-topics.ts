// Creates the orders service's topics (idempotent): `node examples/orders/create-topics.ts [--partitions 3]`.
// Brokers from KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092; TLS and SASL from WEIR_KAFKA_CONFIG), prefix from WEIR_ORDERS_PREFIX (default `orders`).
import { parseArgs } from 'node:util'

import { createAdmin, kafkaFromEnvironment } from '../../kafka/index.ts'
import type { KafkaConnection } from '../../kafka/index.ts'
import { ordersService, ordersTopicSpecs, prefixFromEnv } from './service.ts'

/** Creates every topic of the service (existing ones are left as they are); returns their names. */
export async function createOrdersTopics(options: { brokers: readonly string[]; connection?: KafkaConnection; prefix?: string; partitions?: number }): Promise<string[]> {
  const specs = ordersTopicSpecs(ordersService({ ...(options.prefix === undefined ? {} : { prefix: options.prefix }) }), options.partitions)
  const admin = createAdmin({ brokers: [...options.brokers], connection: options.connection, clientId: 'weir-orders-setup' })
  try {
    await admin.createTopics(specs)
  } finally {
    await admin.close()
  }
  return specs.map((s) => s.name)
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { partitions: { type: 'string', default: '3' } } })
  const { brokers, connection } = kafkaFromEnvironment(process.env)
  const names = await createOrdersTopics({ brokers, connection, prefix: prefixFromEnv(), partitions: Number(values.partitions) })
  process.stdout.write(`topics ready on ${brokers.join(',')}: ${names.join(', ')}\n`)
}
