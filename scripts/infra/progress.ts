// Human progress lines for long-running scripts (stderr, so stdout stays clean for --json output).

export class InfraUnavailable extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'InfraUnavailable'
  }
}

export interface Progress {
  step(message: string): void
  done(message: string): void
}

export function createProgress(prefix = 'weir'): Progress {
  const started = performance.now()
  const stamp = () => `${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s`
  return {
    step: (message) => process.stderr.write(`[${prefix} ${stamp()}] ${message}\n`),
    done: (message) => process.stderr.write(`[${prefix} ${stamp()}] ✔ ${message}\n`),
  }
}
