// The non-durable periodic callbacks of a task's processors (ProcessorContext.schedule), like Kafka Streams'
// PunctuationQueue: by wall-clock time or by stream time (record timestamps).
import type { Cancellable } from '../processor.ts'

type PunctuationType = 'wall-clock' | 'stream-time'

interface Punctuation {
  interval: number
  type: PunctuationType
  next: number
  callback: (timestamp: number) => void | Promise<void>
  node: string
  cancelled: boolean
}

export class Punctuations {
  #entries: Punctuation[] = []

  add(node: string, interval: number, type: PunctuationType, start: number, callback: Punctuation['callback']): Cancellable {
    const entry: Punctuation = { interval, type, next: start + interval, callback, node, cancelled: false }
    this.#entries.push(entry)
    return {
      cancel() {
        entry.cancelled = true
      },
    }
  }

  /** The earliest time a wall-clock punctuation is due (Infinity: none). */
  nextWallClock(): number {
    return this.next('wall-clock')
  }

  /** The earliest time a punctuation of `type` is due (Infinity: none). */
  next(type: PunctuationType): number {
    let next = Infinity
    for (const p of this.#entries) if (!p.cancelled && p.type === type && p.next < next) next = p.next
    return next
  }

  /** Runs each punctuation of `type` due at `time` through `invoke`, which stages what it does. */
  async run(type: PunctuationType, time: number, invoke: (node: string, call: () => void | Promise<void>) => Promise<void>): Promise<void> {
    if (this.#entries.length === 0) return
    let cancelled = false
    for (const p of this.#entries) {
      if (p.cancelled) cancelled = true
      if (p.cancelled || p.type !== type || time < p.next) continue
      p.next = time + p.interval
      await invoke(p.node, () => p.callback(time))
    }
    if (cancelled || this.#entries.some((p) => p.cancelled)) this.#entries = this.#entries.filter((p) => !p.cancelled)
  }
}
