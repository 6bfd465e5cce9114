// The orders service's command catalog for the gateway:
//   node gateway/main.ts --catalog examples/orders/catalog.ts ...
// Built from the same registry the worker routes with, so the gateway rejects exactly what the worker would
// (unknown path, schema violation) before anything reaches Kafka. Topic prefix: WEIR_ORDERS_PREFIX (default `orders`).
import { ordersRegistry, prefixFromEnv } from './service.ts'

export const catalog = ordersRegistry({ prefix: prefixFromEnv() }).catalog
