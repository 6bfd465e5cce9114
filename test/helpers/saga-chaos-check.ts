// The saga part of the `npm run chaos` verdict: the sagas fed (each with the end its start data demands, see
// test/fixtures/chaos-saga.ts) against the saga's events as a read_committed reader saw them, every record
// counted (an event seen twice counts twice). Every saga must end exactly once, as what it must end as, with
// its compensations newest first; completed + compensated must be the sagas started, and both > 0.
import { decodeEnvelope } from '../../envelope/codec.ts'
import type { Envelope } from '../../envelope/envelope.ts'
import type { ConsumedRecord } from '../../kafka/types.ts'

export interface SagaChaosReport {
  /** Sagas the feed started. */
  sagasFed: number
  /** Distinct saga ids with a saga-started event. */
  sagasStarted: number
  sagasCompleted: number
  sagasCompensated: number
  /** Sagas with more than one end event (saga-completed or saga-compensated), or a second saga-started. */
  sagasEndedTwice: number
  /** Sagas fed that have no end event. */
  sagasUnfinished: number
  /** Sagas that ended otherwise than their start data demands, or undid other steps or in another order. */
  sagasWrongEnd: number
  /** Saga events that are unreadable, or of a saga id nobody fed. */
  sagaEventsUnknown: number
}

export interface FedSaga {
  sagaId: string
  ends: 'completed' | 'compensated'
  /** The steps it must compensate, in order. */
  undone: readonly string[]
}

const END_ALIASES = new Set(['saga-completed', 'saga-compensated'])

export class SagaChaosTracker {
  readonly #fed = new Map<string, FedSaga>()
  readonly #starts = new Map<string, number>()
  readonly #ends = new Map<string, string[]>()
  readonly #undone = new Map<string, string[]>()
  #unknown = 0

  fed(saga: FedSaga): void {
    this.#fed.set(saga.sagaId, saga)
  }

  /** One record of the saga events topic. */
  add(record: ConsumedRecord): void {
    let event: Envelope
    try {
      event = decodeEnvelope(record.value ?? Buffer.alloc(0))
    } catch {
      this.#unknown++
      return
    }
    const sagaId = (event.payload as { sagaId?: unknown } | null)?.sagaId
    if (typeof sagaId !== 'string' || !this.#fed.has(sagaId)) {
      this.#unknown++
      return
    }
    if (event.alias === 'saga-started') this.#starts.set(sagaId, (this.#starts.get(sagaId) ?? 0) + 1)
    else if (END_ALIASES.has(event.alias)) this.#ends.set(sagaId, [...(this.#ends.get(sagaId) ?? []), event.alias])
    else if (event.alias === 'saga-step-compensated') this.#undone.set(sagaId, [...(this.#undone.get(sagaId) ?? []), String((event.payload as { step?: unknown }).step)])
  }

  /** Every saga fed has ended (the run may stop waiting). */
  complete(): boolean {
    return this.#fed.size > 0 && [...this.#fed.keys()].every((id) => this.#ends.has(id))
  }

  report(): SagaChaosReport {
    let completed = 0
    let compensated = 0
    let twice = 0
    let unfinished = 0
    let wrong = 0
    for (const [id, saga] of this.#fed) {
      const ends = this.#ends.get(id) ?? []
      if (ends.length === 0) unfinished++
      if (ends.length > 1 || (this.#starts.get(id) ?? 0) > 1) twice++
      const end = ends[0]
      if (end === 'saga-completed') completed++
      if (end === 'saga-compensated') compensated++
      const undone = this.#undone.get(id) ?? []
      if (end !== undefined && (end !== `saga-${saga.ends}` || undone.join(',') !== saga.undone.join(','))) wrong++
    }
    return {
      sagasFed: this.#fed.size,
      sagasStarted: this.#starts.size,
      sagasCompleted: completed,
      sagasCompensated: compensated,
      sagasEndedTwice: twice,
      sagasUnfinished: unfinished,
      sagasWrongEnd: wrong,
      sagaEventsUnknown: this.#unknown,
    }
  }
}

/** The saga checks the report fails, each as `field: value`; empty when they pass. */
export function sagaChaosVerdict(report: SagaChaosReport): string[] {
  const failed: string[] = []
  const must = (ok: boolean, field: keyof SagaChaosReport) => {
    if (!ok) failed.push(`${field}: ${report[field]}`)
  }
  must(report.sagasFed > 0, 'sagasFed')
  must(report.sagasStarted === report.sagasFed, 'sagasStarted')
  must(report.sagasCompleted > 0, 'sagasCompleted')
  must(report.sagasCompensated > 0, 'sagasCompensated')
  must(report.sagasEndedTwice === 0, 'sagasEndedTwice')
  must(report.sagasUnfinished === 0, 'sagasUnfinished')
  must(report.sagasWrongEnd === 0, 'sagasWrongEnd')
  must(report.sagaEventsUnknown === 0, 'sagaEventsUnknown')
  if (report.sagasCompleted + report.sagasCompensated !== report.sagasStarted) failed.push(`sagasCompleted + sagasCompensated: ${report.sagasCompleted + report.sagasCompensated} of ${report.sagasStarted} started`)
  return failed
}
