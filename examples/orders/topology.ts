// The orders service as a topology module for the worker:
//   weir worker examples/orders/topology.ts --brokers host:9092
// Topics are `<prefix>.*` with the prefix from WEIR_ORDERS_PREFIX (default `orders`); create them first with
// `node examples/orders/create-topics.ts` (the demo does). The consumer group is `<prefix>-service`.
import { ordersService, prefixFromEnv } from './service.ts'

const prefix = prefixFromEnv()
const service = ordersService({ prefix })

export const applicationId = `${prefix}-service`
export const topology = service.topology
export const topics = service.topics
