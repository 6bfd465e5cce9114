// The order saga example: payment, inventory and shipping, each its own command service (its own topology,
// topics and worker), and the order saga that runs through them when the orders service (examples/orders)
// emits `order-placed`:
//
//   order-placed ─▶ payment/charge ─▶ inventory/reserve ─▶ shipping/ship (completed by the `shipped` event)
//                   undo: refund      undo: release
//
// Where it fails on purpose (NonRetriableError, so the saga compensates at once):
//   - payment declines an amount over 500 (qty > 50 at 10 per unit): nothing to undo;
//   - inventory has 10 of each sku: qty > 10 is out of stock, the charge is refunded;
//   - shipping does not ship sku `piano`: the reservation is released, then the charge refunded.
// Every handler is idempotent by order id (a retried or late command finds what the first one did), and every
// compensation accepts "nothing to undo", because a saga may undo a step that timed out and never happened.
import { createCommandRegistry, NonRetriableError } from '../../processors/command-router.ts'
import type { CommandContext, CommandHandler } from '../../processors/command-router.ts'
import { commandService } from '../../processors/command-service.ts'
import type { CommandService } from '../../processors/command-service.ts'
import { defineSaga, sagaTopicSpecs } from '../../processors/saga.ts'
import type { Saga } from '../../processors/saga.ts'
import type { TopicSpec } from '../../kafka/types.ts'
import { ordersTopics } from '../orders/service.ts'

export const PARTICIPANTS = ['payment', 'inventory', 'shipping'] as const
export type Participant = (typeof PARTICIPANTS)[number]
export const UNIT_PRICE = 10
export const MAX_AMOUNT = 500
export const STOCK_PER_SKU = 10
export const UNSHIPPABLE_SKU = 'piano'

const orderId = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } as const
const byOrder = { type: 'object', required: ['orderId'], properties: { orderId }, additionalProperties: true } as const

export function participantTopics(prefix: string, participant: Participant) {
  return { commands: `${prefix}.${participant}.commands`, results: `${prefix}.${participant}.results`, events: `${prefix}.${participant}.events` }
}

function handler<P>(participant: Participant, alias: string, description: string, handle: (ctx: CommandContext<P & { orderId: string }>) => unknown): CommandHandler<never, unknown> {
  return { contextPath: participant, alias, description, keyField: 'orderId', stores: [participant], payloadSchema: byOrder, handle } as unknown as CommandHandler<never, unknown>
}

interface Charge {
  chargeId: string
  amount: number
  refunded: boolean
}

function paymentHandlers(): Array<CommandHandler<never, unknown>> {
  const store = (ctx: CommandContext<unknown>) => ctx.store<string, Charge>('payment')
  return [
    handler<{ amount: number }>('payment', 'charge', 'Charges an order (declines amounts over 500).', async (ctx) => {
      const existing = await store(ctx).get(ctx.payload.orderId)
      if (existing !== undefined) return existing
      if (ctx.payload.amount > MAX_AMOUNT) throw new NonRetriableError(`payment declined: ${ctx.payload.amount} is over ${MAX_AMOUNT}`)
      const charge: Charge = { chargeId: `ch-${ctx.payload.orderId}`, amount: ctx.payload.amount, refunded: false }
      await store(ctx).put(ctx.payload.orderId, charge)
      ctx.emit('payment-charged', { orderId: ctx.payload.orderId, ...charge })
      return charge
    }),
    handler('payment', 'refund', 'Refunds an order (nothing to do when it was never charged).', async (ctx) => {
      const existing = await store(ctx).get(ctx.payload.orderId)
      if (existing === undefined || existing.refunded) return { orderId: ctx.payload.orderId, refunded: existing?.refunded ?? false }
      await store(ctx).put(ctx.payload.orderId, { ...existing, refunded: true })
      ctx.emit('payment-refunded', { orderId: ctx.payload.orderId, chargeId: existing.chargeId })
      return { orderId: ctx.payload.orderId, refunded: true }
    }),
  ]
}

function inventoryHandlers(): Array<CommandHandler<never, unknown>> {
  const store = (ctx: CommandContext<unknown>) => ctx.store<string, { sku: string; qty: number }>('inventory')
  return [
    handler<{ sku: string; qty: number }>('inventory', 'reserve', 'Reserves stock for an order (10 of each sku).', async (ctx) => {
      const existing = await store(ctx).get(ctx.payload.orderId)
      if (existing !== undefined) return existing
      if (ctx.payload.qty > STOCK_PER_SKU) throw new NonRetriableError(`out of stock: ${ctx.payload.qty} ${ctx.payload.sku} wanted, ${STOCK_PER_SKU} there`)
      const reservation = { sku: ctx.payload.sku, qty: ctx.payload.qty }
      await store(ctx).put(ctx.payload.orderId, reservation)
      return reservation
    }),
    handler('inventory', 'release', 'Releases an order\'s reservation (nothing to do without one).', async (ctx) => {
      const existing = await store(ctx).get(ctx.payload.orderId)
      if (existing !== undefined) await store(ctx).delete(ctx.payload.orderId)
      return { orderId: ctx.payload.orderId, released: existing !== undefined }
    }),
  ]
}

function shippingHandlers(): Array<CommandHandler<never, unknown>> {
  const store = (ctx: CommandContext<unknown>) => ctx.store<string, { trackingId: string }>('shipping')
  return [
    handler<{ sku: string; qty: number }>('shipping', 'ship', 'Ships an order (not sku piano); emits shipped.', async (ctx) => {
      const existing = await store(ctx).get(ctx.payload.orderId)
      if (existing !== undefined) {
        ctx.emit('shipped', { orderId: ctx.payload.orderId, ...existing })
        return existing
      }
      if (ctx.payload.sku === UNSHIPPABLE_SKU) throw new NonRetriableError(`cannot ship a ${UNSHIPPABLE_SKU}`)
      const shipment = { trackingId: `trk-${ctx.payload.orderId}` }
      await store(ctx).put(ctx.payload.orderId, shipment)
      ctx.emit('shipped', { orderId: ctx.payload.orderId, ...shipment })
      return shipment
    }),
  ]
}

const HANDLERS: Record<Participant, () => Array<CommandHandler<never, unknown>>> = { payment: paymentHandlers, inventory: inventoryHandlers, shipping: shippingHandlers }

export function participantService(prefix: string, participant: Participant): CommandService {
  return commandService({
    registry: createCommandRegistry({ topicAlias: participant, topics: participantTopics(prefix, participant), handlers: HANDLERS[participant]() }),
    stores: { [participant]: { keySerde: 'string', valueSerde: 'json' } },
    retry: { attempts: 3, baseDelayMs: 50 },
  })
}

export interface OrderData {
  orderId: string
  sku: string
  qty: number
}

export interface OrderSagaOptions {
  /** Per attempt of a step, ms (default 10 s). */
  timeoutMs?: number
  /** Extra attempts of a step after a timeout (default 2). */
  retries?: number
}

/** The order saga: started by the orders service's `order-placed`, its events on the orders events topic. */
export function orderSaga(prefix: string, options: OrderSagaOptions = {}): Saga {
  const t = (p: Participant) => participantTopics(prefix, p)
  const timing = { timeoutMs: options.timeoutMs ?? 10_000 }
  const command = (p: Participant, alias: string) => ({ topic: t(p).commands, topicAlias: p, contextPath: p, alias, ...timing })
  const orders = ordersTopics(prefix)
  return defineSaga<OrderData>({
    name: 'order',
    start: { topic: orders.events, alias: 'order-placed', sagaId: (e) => (e.payload as Partial<OrderData>).orderId },
    replyTopics: [t('payment').results, t('inventory').results, t('shipping').results, t('shipping').events],
    topics: { inbox: `${prefix}.order-saga.inbox`, events: orders.events },
    steps: [
      {
        name: 'payment',
        ...command('payment', 'charge'),
        payload: (s) => ({ orderId: s.sagaId, amount: s.data.qty * UNIT_PRICE }),
        retries: options.retries ?? 2,
        compensation: { ...command('payment', 'refund'), payload: (s) => ({ orderId: s.sagaId }) },
      },
      {
        name: 'inventory',
        ...command('inventory', 'reserve'),
        payload: (s) => ({ orderId: s.sagaId, sku: s.data.sku, qty: s.data.qty }),
        retries: options.retries ?? 2,
        compensation: { ...command('inventory', 'release'), payload: (s) => ({ orderId: s.sagaId }) },
      },
      {
        name: 'shipping',
        ...command('shipping', 'ship'),
        payload: (s) => ({ orderId: s.sagaId, sku: s.data.sku, qty: s.data.qty }),
        completesOn: { event: 'shipped' },
        retries: options.retries ?? 2,
      },
    ],
  })
}

export const sagaApplicationId = (prefix: string) => `${prefix}-order-saga`

/** Every topic of the three participants and of the saga (the orders service's are examples/orders'). */
export function sagaExampleTopicSpecs(prefix: string, partitions = 3): TopicSpec[] {
  const participants = PARTICIPANTS.flatMap((p) => {
    const t = participantService(prefix, p).topics
    return [t.commands, t.deadlines, t.scheduler, t.outcomes, t.lateResults, t.events].map((name) => ({ name, partitions }))
  })
  // The saga's events go to the orders events topic, which examples/orders creates.
  return [...participants, ...sagaTopicSpecs(orderSaga(prefix), partitions).filter((s) => s.name !== ordersTopics(prefix).events)]
}
