// Frames from the gateway, one case per server frame type: sealed results are decrypted first, frames the
// client already has are dropped (cursors), and each frame goes to the part of the client it concerns.
import type { WeirError } from '../../core/errors.ts'
import { gatewayError } from '../errors.ts'
import type { ServerFrame, WelcomeFrame } from '../protocol.ts'
import type { Callbacks } from './callbacks.ts'
import type { Connection, Socket } from './connection.ts'
import type { Cursors } from './cursors.ts'
import type { GatewayClientOptions } from './options.ts'
import type { Requests } from './requests.ts'
import { resolvePayload } from './payloads.ts'
import { deriveSealingKey, unseal } from './sealing.ts'
import type { SealingKeys } from './sealing.ts'
import { SUBSCRIPTION_REFUSED } from './subscriptions.ts'
import type { Subscriptions } from './subscriptions.ts'

/** Error codes after which a command is sent again on the next connection instead of failing. */
const RESEND_CODES: ReadonlySet<string> = new Set(['WEIR_ERR_CLOSED'])

export interface ReceiverParts {
  readonly keys: SealingKeys | undefined
  readonly options: Pick<GatewayClientOptions, 'onGap' | 'onResult'>
  readonly callbacks: Callbacks
  readonly socket: Socket
  readonly cursors: Cursors
  readonly requests: Requests
  readonly subscriptions: Subscriptions
  /** The gateway's HTTP origin, where payloads by reference are downloaded (payloads.ts). */
  origin(): string
  /** The gateway welcomed the current connection: its session, its token's expiry. */
  welcomed(frame: WelcomeFrame): void
  /** The gateway has resumed the session from the client's offsets. */
  resumed(): void
  /** The gateway accepted a fresh token, valid until `expiresAt`. */
  authenticated(expiresAt: number | undefined): void
}

export function createReceiver(parts: ReceiverParts): (connection: Connection, frame: ServerFrame) => Promise<void> {
  const { keys, options, callbacks, socket, cursors, requests, subscriptions } = parts

  return async function onFrame(connection, received) {
    let frame = received
    if ((frame.type === 'result' || frame.type === 'timeout') && frame.sealed !== undefined) {
      const sealed = frame
      try {
        frame = await unseal(sealed, await connection.key)
      } catch (error) {
        if (!cursors.accept(sealed)) return
        if (!requests.reject(sealed.requestId, error as WeirError)) throw error
        return
      }
    }
    switch (frame.type) {
      case 'welcome': {
        if (keys !== undefined && frame.sealing !== undefined) {
          connection.key = deriveSealingKey(keys, frame.sealing, frame.sessionId)
          connection.key.catch(() => {})
        }
        if (!socket.welcomed(connection)) return
        parts.welcomed(frame)
        // Resume first (results), then subscriptions (events, from the same offsets), then unacked commands.
        socket.write({ type: 'resume', offsets: cursors.list() })
        for (const alias of subscriptions.aliases()) socket.write({ type: 'subscribe', topic: alias })
        for (const command of requests.unacked()) socket.write(command)
        return
      }
      case 'resumed':
        cursors.advanceAll(frame.positions)
        parts.resumed()
        return
      case 'checkpoint':
        cursors.advanceAll(frame.positions)
        return
      case 'subscribed':
        subscriptions.subscribed(frame)
        cursors.advanceAll(frame.positions)
        return
      case 'ack':
        requests.ack(frame)
        return
      case 'result':
      case 'timeout':
        if (!cursors.accept(frame)) return
        if (!requests.outcome(frame)) callbacks.notify('onResult', options.onResult, frame)
        return
      case 'event': {
        if (!cursors.accept(frame)) return
        // An event by reference is downloaded before the handlers see it (in order: frames are handled one at a
        // time); if that fails, onError hears why and the handlers get the frame with its payloadRef.
        const event = frame.payloadRef === undefined ? frame : await resolvePayload(parts.origin(), frame).catch((error: unknown) => (callbacks.tellError(error as WeirError), frame))
        subscriptions.deliver(event)
        return
      }
      case 'gap':
        cursors.advance(frame.topic, frame.partition, BigInt(frame.to))
        callbacks.notify('onGap', options.onGap, frame)
        return
      case 'error': {
        const error = gatewayError(frame.code, frame.message, frame.details === undefined ? {} : { details: frame.details })
        if (frame.requestId === undefined || !requests.has(frame.requestId)) {
          const alias = frame.details?.topic
          if (typeof alias === 'string' && SUBSCRIPTION_REFUSED.has(frame.code) && subscriptions.refuse(alias, error)) return
          callbacks.tellError(error)
          return
        }
        if (RESEND_CODES.has(frame.code)) return // sent again after the reconnect
        requests.reject(frame.requestId, error)
        return
      }
      case 'authenticated':
        parts.authenticated(frame.expiresAt)
        return
      case 'unsubscribed':
        return
      default: {
        // A server frame type without a case here does not compile.
        const unhandled: never = frame
        return unhandled
      }
    }
  }
}
