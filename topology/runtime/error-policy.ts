// What a processing error does, by the task's error policy: fail the task, skip the record (or timer), or
// dead-letter it with headers that say where it came from and why it failed.
import { Packr } from 'msgpackr'

import { WeirError, isWeirError } from '../../core/errors.ts'
import type { ConsumedRecord, OutgoingRecord } from '../../kafka/types.ts'
import { deadLetterHeaders } from '../dead-letter.ts'
import type { DueTimer } from './timers.ts'

export type ErrorPolicy = 'dead-letter' | 'skip' | 'fail'

const packr = new Packr({ useRecords: false, moreTypes: false })

/** What failed: an input record, a timer of a processor, or neither (a punctuation: nothing to dead-letter). */
export interface FailedWork {
  node: string
  consumed: ConsumedRecord | undefined
  timer?: { processor: string; timer: DueTimer } | undefined
  attempts: number
}

/** The error as a task reports it: a WeirError as it is, anything else as WEIR_ERR_PROCESSING of its processor. */
export function processingError(error: unknown, node: string): WeirError {
  return isWeirError(error)
    ? error
    : new WeirError('WEIR_ERR_PROCESSING', `processor ${node} failed: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
        details: { processor: node },
      })
}

export function deadLetterOf(
  error: WeirError,
  work: FailedWork,
  task: { applicationId: string; partition: number; deadLetterTopic: (sourceTopic: string) => string },
): OutgoingRecord | undefined {
  const { consumed, timer, node, attempts } = work
  if (consumed !== undefined) {
    return {
      topic: task.deadLetterTopic(consumed.topic),
      key: consumed.key ?? null,
      value: consumed.value ?? null,
      headers: deadLetterHeaders(error, { ...consumed, processor: node, attempts }),
    }
  }
  if (timer === undefined) return undefined
  const topic = `${task.applicationId}-timers`
  return {
    topic: task.deadLetterTopic(topic),
    key: timer.timer.key,
    value: packr.pack({ at: timer.timer.at, payload: timer.timer.payload }),
    headers: deadLetterHeaders(error, {
      topic,
      partition: task.partition,
      offset: -1n,
      timestamp: BigInt(timer.timer.at),
      processor: timer.processor,
      attempts: 1,
    }),
  }
}
