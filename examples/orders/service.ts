// An example command service built with weir: orders that can be placed, cancelled and read, plus a slow
// command that shows what a TTL does. It is what `npm run demo` runs, and a template for a real service.
//
//   orders/orders/place   { orderId, sku, qty }   -> { orderId, status: 'placed', ... }, event order-placed
//   orders/orders/cancel  { orderId, reason? }    -> { orderId, status: 'cancelled', ... }, event order-cancelled
//   orders/orders/get     { orderId }             -> the order
//   orders/orders/slow    { ms }                  -> { sleptMs } after sleeping ms (default TTL 1 s: a timeout)
//
// Every command of one order goes to the same partition (keyField orderId), so an order's commands are handled
// in order, and the order's state lives in the task that owns that partition (store `orders`, with changelog).
import { createCommandRegistry, NonRetriableError } from '../../processors/command-router.ts'
import type { CommandContext, CommandHandler, CommandRegistry } from '../../processors/command-router.ts'
import { commandService } from '../../processors/command-service.ts'
import type { CommandService } from '../../processors/command-service.ts'
import type { TopicBinding } from '../../commands/catalog.ts'
import type { FaultInjector } from '../../processors/faults/injector.ts'
import type { TopicSpec } from '../../kafka/types.ts'

/** Environment variable that prefixes every topic of the service (default `orders`), so several copies can share a broker. */
export const ORDERS_PREFIX_ENV = 'WEIR_ORDERS_PREFIX'
export const TOPIC_ALIAS = 'orders'
export const CONTEXT_PATH = 'orders'
/** The store the handlers keep orders in. */
export const ORDERS_STORE = 'orders'

export interface Order {
  readonly orderId: string
  readonly sku: string
  readonly qty: number
  readonly status: 'placed' | 'cancelled'
  readonly placedAt: number
  readonly cancelledAt?: number
  readonly reason?: string
}

export interface OrdersServiceOptions {
  /** Topic name prefix (default `orders`): `<prefix>.commands`, `<prefix>.results`, `<prefix>.events`, ... */
  prefix?: string
  /** How the slow command waits (tests replace it). */
  sleep?: (ms: number) => Promise<void>
  /** Fault injection for tests and the demo (docs/faults.md): inert unless the worker runs with --faults true. */
  faults?: FaultInjector
}

export function prefixFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const prefix = env[ORDERS_PREFIX_ENV]
  return prefix === undefined || prefix === '' ? 'orders' : prefix
}

export function ordersTopics(prefix = 'orders'): TopicBinding {
  return { commands: `${prefix}.commands`, results: `${prefix}.results`, events: `${prefix}.events` }
}

const orderId = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } as const

export function ordersHandlers(options: OrdersServiceOptions = {}): Array<CommandHandler<never, unknown>> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  const orders = (ctx: CommandContext<unknown>) => ctx.store<string, Order>(ORDERS_STORE)

  const place: CommandHandler<{ orderId: string; sku: string; qty: number }, Order> = {
    contextPath: CONTEXT_PATH,
    alias: 'place',
    description: 'Places an order; emits order-placed.',
    keyField: 'orderId',
    stores: [ORDERS_STORE],
    payloadSchema: {
      type: 'object',
      required: ['orderId', 'sku', 'qty'],
      properties: { orderId, sku: { type: 'string', minLength: 1, maxLength: 64 }, qty: { type: 'integer', minimum: 1, maximum: 1000 } },
      additionalProperties: false,
    },
    async handle(ctx) {
      const { orderId: id, sku, qty } = ctx.payload
      const existing = await orders(ctx).get(id)
      if (existing !== undefined) throw new NonRetriableError(`order ${id} exists already (${existing.status})`, { details: { orderId: id } })
      const order: Order = { orderId: id, sku, qty, status: 'placed', placedAt: ctx.now() }
      await orders(ctx).put(id, order)
      ctx.emit('order-placed', { orderId: id, sku, qty })
      return order
    },
  }

  const cancel: CommandHandler<{ orderId: string; reason?: string }, Order> = {
    contextPath: CONTEXT_PATH,
    alias: 'cancel',
    description: 'Cancels a placed order; emits order-cancelled.',
    keyField: 'orderId',
    stores: [ORDERS_STORE],
    payloadSchema: {
      type: 'object',
      required: ['orderId'],
      properties: { orderId, reason: { type: 'string', maxLength: 200 } },
      additionalProperties: false,
    },
    async handle(ctx) {
      const { orderId: id, reason } = ctx.payload
      const existing = await orders(ctx).get(id)
      if (existing === undefined) throw new NonRetriableError(`order ${id} does not exist`, { details: { orderId: id } })
      if (existing.status === 'cancelled') throw new NonRetriableError(`order ${id} is cancelled already`, { details: { orderId: id } })
      const order: Order = { ...existing, status: 'cancelled', cancelledAt: ctx.now(), ...(reason === undefined ? {} : { reason }) }
      await orders(ctx).put(id, order)
      ctx.emit('order-cancelled', { orderId: id, ...(reason === undefined ? {} : { reason }) })
      return order
    },
  }

  const get: CommandHandler<{ orderId: string }, Order> = {
    contextPath: CONTEXT_PATH,
    alias: 'get',
    description: 'Reads an order.',
    keyField: 'orderId',
    stores: [ORDERS_STORE],
    payloadSchema: { type: 'object', required: ['orderId'], properties: { orderId }, additionalProperties: false },
    async handle(ctx) {
      const existing = await orders(ctx).get(ctx.payload.orderId)
      if (existing === undefined) throw new NonRetriableError(`order ${ctx.payload.orderId} does not exist`, { details: { orderId: ctx.payload.orderId } })
      return existing
    },
  }

  // Sleeps in the handler, which holds up the worker's loop: the deadline arbiter's timer fires as soon as the
  // loop goes on, before the (late) result has come back through Kafka, so the timeout wins and the result is
  // kept apart on the late-results topic. A real service would hand long work to the scheduler instead.
  const slow: CommandHandler<{ ms: number }, { sleptMs: number }> = {
    contextPath: CONTEXT_PATH,
    alias: 'slow',
    description: 'Answers after `ms` milliseconds; its default TTL is 1 s, so 1000 ms or more times out unless a longer ttlMs is given.',
    defaultTtlMs: 1000,
    maxTtlMs: 30_000,
    payloadSchema: { type: 'object', required: ['ms'], properties: { ms: { type: 'integer', minimum: 0, maximum: 5000 } }, additionalProperties: false },
    async handle(ctx) {
      await sleep(ctx.payload.ms)
      return { sleptMs: ctx.payload.ms }
    },
  }

  return [place, cancel, get, slow] as Array<CommandHandler<never, unknown>>
}

export function ordersRegistry(options: OrdersServiceOptions = {}): CommandRegistry {
  return createCommandRegistry({ topicAlias: TOPIC_ALIAS, topics: ordersTopics(options.prefix), handlers: ordersHandlers(options) })
}

export function ordersService(options: OrdersServiceOptions = {}): CommandService {
  return commandService({
    registry: ordersRegistry(options),
    stores: { [ORDERS_STORE]: { keySerde: 'string', valueSerde: 'json' } },
    // Handler failures other than NonRetriableError are retried in order, briefly.
    retry: { attempts: 3, baseDelayMs: 50 },
    ...(options.faults === undefined ? {} : { faults: options.faults }),
  })
}

/**
 * Every topic the service and the gateway use, with the same partition count (the service's sources must be
 * co-partitioned). Changelog and dead-letter topics are created by the worker itself.
 */
export function ordersTopicSpecs(service: CommandService, partitions = 3): TopicSpec[] {
  const t = service.topics
  return [t.commands, t.deadlines, t.scheduler, t.outcomes, t.lateResults, t.events].map((name) => ({ name, partitions }))
}
