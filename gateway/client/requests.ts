// Commands in flight: each waits for its ack and then its outcome (result, timeout result or error frame), with
// a timer that gives up at the deadline plus a grace period. A command not acked yet is written again on every
// new connection with the same requestId, which the gateway turns into the same envelope id.
import type { WeirError } from '../../core/errors.ts'
import { gatewayError, isWireErrorCode } from '../errors.ts'
import type { AckFrame, ClientFrame, ResultFrame, TimeoutFrame } from '../protocol.ts'
import type { Callbacks } from './callbacks.ts'
import { preparePayload, resolvePayload } from './payloads.ts'
import type { SendOptions } from './options.ts'

export interface Requests {
  /** Starts a command: its entry, its outcome timer, and the frame (written now, or when a connection is welcomed). */
  start(path: string, payload: unknown, options: SendOptions): Promise<ResultFrame>
  has(requestId: string): boolean
  /** The frames of the commands the gateway has not acked, to write on a new connection. */
  unacked(): ClientFrame[]
  ack(frame: AckFrame): void
  /** Settles the command a result or timeout frame answers; false when no command of this client waits for it. */
  outcome(frame: ResultFrame | TimeoutFrame): boolean
  /** Rejects a waiting command; false when none has that requestId. */
  reject(requestId: string, error: WeirError): boolean
  /** Rejects every waiting command (the client closed). */
  rejectAll(error: () => WeirError): void
}

export interface RequestsOptions {
  readonly outcomeGraceMs: number
  readonly defaultTtlMs: number
  readonly callbacks: Callbacks
  /** The gateway's HTTP origin (uploads, downloads) and the current token: large payloads (payloads.ts). */
  origin(): string
  token(): Promise<string>
  /** Payloads whose msgpack is larger are uploaded first. */
  readonly uploadThresholdBytes: number
  /** Writes a frame on the current connection; false when there is none (the frame waits for the next). */
  write(frame: ClientFrame): boolean
}

interface Pending {
  readonly requestId: string
  readonly frame: ClientFrame
  readonly resolve: (result: ResultFrame) => void
  readonly reject: (error: WeirError) => void
  readonly onAck: ((ack: AckFrame) => void) | undefined
  acked: boolean
  timer: ReturnType<typeof setTimeout> | undefined
}

export function createRequests(options: RequestsOptions): Requests {
  const { outcomeGraceMs, defaultTtlMs, callbacks, write, origin, token, uploadThresholdBytes } = options
  const pending = new Map<string, Pending>()

  function guard(p: Pending, ms: number): void {
    clearTimeout(p.timer)
    p.timer = setTimeout(() => {
      if (pending.get(p.requestId) !== p) return
      settle(p)
      p.reject(gatewayError('WEIR_ERR_TIMEOUT', `no outcome for ${p.requestId} within its deadline plus ${outcomeGraceMs} ms`))
    }, Math.max(0, ms))
  }

  function settle(p: Pending): void {
    clearTimeout(p.timer)
    pending.delete(p.requestId)
  }

  return {
    async start(path, payload, sendOptions) {
      const requestId = sendOptions.requestId ?? newRequestId()
      const existing = pending.get(requestId)
      if (existing !== undefined) return Promise.reject(gatewayError('WEIR_ERR_INVALID_OPTIONS', `requestId ${requestId} is already in flight`))
      // A large payload is uploaded before the command is sent (payloads.ts).
      const prepared = await preparePayload(origin(), token, payload, uploadThresholdBytes)
      const frame: ClientFrame = {
        type: 'command',
        path,
        requestId,
        ...prepared,
        ...(sendOptions.ttlMs === undefined ? {} : { ttlMs: sendOptions.ttlMs }),
        ...(sendOptions.traceparent === undefined ? {} : { traceparent: sendOptions.traceparent }),
      }
      return new Promise<ResultFrame>((resolve, reject) => {
        const p: Pending = { requestId, frame, resolve, reject, onAck: sendOptions.onAck, acked: false, timer: undefined }
        pending.set(requestId, p)
        guard(p, (sendOptions.ttlMs ?? defaultTtlMs) + outcomeGraceMs)
        write(frame) // else sent when the connection is (re)established
      })
    },

    has(requestId) {
      return pending.has(requestId)
    },

    unacked() {
      return [...pending.values()].filter((p) => !p.acked).map((p) => p.frame)
    },

    ack(frame) {
      const p = pending.get(frame.requestId)
      if (p === undefined || p.acked) return
      p.acked = true
      callbacks.notify('onAck', p.onAck, frame)
      if (frame.deadline !== undefined) guard(p, frame.deadline - Date.now() + outcomeGraceMs)
    },

    outcome(frame) {
      const p = pending.get(frame.requestId)
      if (p === undefined) return false
      settle(p)
      if (frame.type === 'timeout') {
        p.reject(gatewayError('WEIR_ERR_DEADLINE_EXCEEDED', `no result for ${frame.requestId} before its deadline`, { details: { result: frame } }))
      } else if (frame.status === 'error') {
        const code = (frame.payload as { code?: unknown } | null)?.code
        const message = (frame.payload as { message?: unknown } | null)?.message
        p.reject(
          gatewayError(isWireErrorCode(code) ? code : 'WEIR_ERR_PROCESSING', typeof message === 'string' ? message : `command ${frame.requestId} failed`, {
            details: { result: frame },
          }),
        )
      } else if (frame.payloadRef === undefined) {
        p.resolve(frame)
      } else {
        // A result by reference is downloaded and verified first (payloads.ts).
        resolvePayload(origin(), frame).then(p.resolve, p.reject)
      }
      return true
    },

    reject(requestId, error) {
      const p = pending.get(requestId)
      if (p === undefined) return false
      settle(p)
      p.reject(error)
      return true
    },

    rejectAll(error) {
      for (const p of [...pending.values()]) {
        settle(p)
        p.reject(error())
      }
    },
  }
}

/** A v4 UUID. crypto.randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere. */
function newRequestId(): string {
  if (typeof globalThis.crypto.randomUUID === 'function') return globalThis.crypto.randomUUID()
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16))
  b[6] = ((b[6] as number) & 0x0f) | 0x40
  b[8] = ((b[8] as number) & 0x3f) | 0x80
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
