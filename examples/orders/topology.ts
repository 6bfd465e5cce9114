// The orders service as a topology module for the worker:
//   weir worker examples/orders/topology.ts --brokers host:9092
// Topics are `<prefix>.*` with the prefix from WEIR_ORDERS_PREFIX (default `orders`); create them first with
// `node examples/orders/create-topics.ts` (the demo does). The consumer group is `<prefix>-service`.
// `faults` is the service's fault injector: it injects nothing unless the worker runs with `--faults true`
// (docs/faults.md), which the demo does so its page can switch faults on.
import { createFaultInjector } from '../../processors/faults/injector.ts'
import { ordersService, prefixFromEnv } from './service.ts'

const prefix = prefixFromEnv()
export const faults = createFaultInjector()
const service = ordersService({ prefix, faults })

export const applicationId = `${prefix}-service`
export const topology = service.topology
export const topics = service.topics
