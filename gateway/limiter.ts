// A concurrency limiter: replays share a bounded number of slots (replayConcurrency).

/** Runs at most `max` tasks at once; the others wait in order. */
export function createLimiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0
  const queue: Array<() => void> = []
  return async (task) => {
    if (active >= max) await new Promise<void>((resolve) => queue.push(resolve))
    else active++
    try {
      return await task()
    } finally {
      const next = queue.shift()
      // The slot passes straight to the next waiter, so no newcomer can slip in between.
      if (next === undefined) active--
      else next()
    }
  }
}
