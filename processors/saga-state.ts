// A saga's state as its store (and its changelog topic, which `weir saga` reads) holds it: one JSON document
// per saga id, rewritten by every transition in the transaction that carries the transition's messages.
import type { Envelope } from '../envelope/envelope.ts'
import type { SagaPhase } from './saga-definition.ts'

export const SAGA_STATES = ['running', 'compensating', 'completed', 'compensated'] as const
export type SagaStatus = (typeof SAGA_STATES)[number]

export interface SagaHistoryEntry {
  readonly at: number
  /** started, step-started, step-completed, step-retried, step-failed, compensation-started, compensation-completed, compensation-failed, completed, compensated */
  readonly event: string
  readonly step?: string
  readonly attempt?: number
  readonly detail?: string
}

export interface SagaState {
  readonly sagaId: string
  readonly saga: string
  readonly status: SagaStatus
  readonly data: unknown
  readonly results: Record<string, unknown>
  /** The step being run (status running) or whose compensation is being run (compensating). */
  readonly step: number
  readonly phase: SagaPhase
  readonly attempt: number
  /** Steps to compensate, in the order they are compensated; `undoIndex` is the next one's position. */
  readonly undo: readonly number[]
  readonly undoIndex: number
  readonly failure?: { readonly step: string; readonly code: string; readonly message: string }
  readonly startedAt: number
  readonly updatedAt: number
  readonly endedAt?: number
  /** The request id and client session of the message that started the saga (the saga's own events carry them). */
  readonly requestId: string
  readonly clientSessionId?: string
  /** The last message that moved the saga (payload dropped): what its next messages are follow-ups of. */
  readonly parent: Envelope
  /** The newest transitions (at most HISTORY_LIMIT). */
  readonly history: readonly SagaHistoryEntry[]
}

export const HISTORY_LIMIT = 64

export function isEnded(state: SagaState): boolean {
  return state.status === 'completed' || state.status === 'compensated'
}

export function withHistory(state: SagaState, entry: SagaHistoryEntry): SagaHistoryEntry[] {
  return [...state.history, entry].slice(-HISTORY_LIMIT)
}

/** The parent a saga keeps: the envelope without its payload (the breadcrumbs and trace are what matter). */
export function parentOf(envelope: Envelope): Envelope {
  return { ...envelope, payload: null }
}

/** The durable timer a saga has at most one of, keyed by its id. */
export type SagaTimer =
  | { readonly kind: 'timeout'; readonly step: number; readonly phase: SagaPhase; readonly attempt: number }
  | { readonly kind: 'send'; readonly step: number; readonly phase: SagaPhase; readonly attempt: number }
  | { readonly kind: 'expire' }
