// Where a gateway test's cleanups go: a test's context, or a file-level collector for what a `before` hook makes.

/** A test's context, or a collector from `cleanups`. */
export interface Cleanup {
  after(fn: () => unknown): void
}

/** Collects cleanups for resources a `before` hook creates; `run` them (last first) in the file's `after`. */
export function cleanups(): Cleanup & { run(): Promise<void> } {
  const fns: Array<() => unknown> = []
  return {
    after: (fn) => void fns.push(fn),
    async run() {
      for (const fn of fns.splice(0).reverse()) await fn()
    },
  }
}
