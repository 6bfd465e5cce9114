// Event subscriptions: the handlers per topic alias, the events topic the gateway named for each, delivering
// event frames to them, and a subscription the gateway refuses or ends.
import type { WeirError } from '../../core/errors.ts'
import type { ClientFrame, EventFrame, SubscribedFrame } from '../protocol.ts'
import type { Callbacks } from './callbacks.ts'
import type { Cursors } from './cursors.ts'

/** Error codes with `details.topic` that refuse or end a subscription. */
export const SUBSCRIPTION_REFUSED: ReadonlySet<string> = new Set(['WEIR_ERR_FORBIDDEN', 'WEIR_ERR_UNKNOWN_TOPIC'])

export interface Subscriptions {
  /** Adds a handler (subscribing the alias when it is the first); returns the function that removes it. */
  add(topicAlias: string, handler: (event: EventFrame) => void, onError: ((error: WeirError) => void) | undefined): () => void
  /** The subscribed aliases, to subscribe again on a new connection. */
  aliases(): Iterable<string>
  subscribed(frame: SubscribedFrame): void
  deliver(frame: EventFrame): void
  /** The gateway refused or ended a subscription: its handlers go, and are told. False when the alias has none. */
  refuse(topicAlias: string, error: WeirError): boolean
}

export interface SubscriptionsOptions {
  readonly callbacks: Callbacks
  readonly cursors: Cursors
  write(frame: ClientFrame): boolean
}

export function createSubscriptions(options: SubscriptionsOptions): Subscriptions {
  const { callbacks, cursors, write } = options
  /** Per topic alias: its event handlers, each with the subscription's onError. */
  const handlers = new Map<string, Map<(event: EventFrame) => void, ((error: WeirError) => void) | undefined>>()
  const eventsTopics = new Map<string, string>()

  /** Drops an alias's handlers and the positions of an events topic no subscription reads any more. */
  function forget(alias: string): void {
    handlers.delete(alias)
    const topic = eventsTopics.get(alias)
    eventsTopics.delete(alias)
    if (topic !== undefined && ![...eventsTopics.values()].includes(topic)) cursors.dropTopic(topic)
  }

  return {
    add(topicAlias, handler, onError) {
      let set = handlers.get(topicAlias)
      if (set === undefined) {
        set = new Map()
        handlers.set(topicAlias, set)
        write({ type: 'subscribe', topic: topicAlias })
      }
      set.set(handler, onError)
      return () => {
        const current = handlers.get(topicAlias)
        if (current !== set || !current.delete(handler) || current.size > 0) return
        forget(topicAlias)
        write({ type: 'unsubscribe', topic: topicAlias })
      }
    },

    aliases() {
      return handlers.keys()
    },

    subscribed(frame) {
      eventsTopics.set(frame.topic, frame.eventsTopic)
    },

    deliver(frame) {
      for (const [alias, set] of handlers) {
        const topic = eventsTopics.get(alias)
        if (topic === frame.topic || (topic === undefined && alias === frame.topicAlias)) for (const handler of set.keys()) callbacks.notify('event handler', handler, frame)
      }
    },

    refuse(topicAlias, error) {
      const set = handlers.get(topicAlias)
      if (set === undefined) return false
      forget(topicAlias)
      const told = [...new Set(set.values())].filter((onError) => onError !== undefined)
      if (told.length === 0) callbacks.tellError(error)
      for (const onError of told) callbacks.notify('subscription onError', onError, error)
      return true
    },
  }
}
