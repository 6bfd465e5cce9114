import { WeirError } from '../../core/errors.ts'

export interface WaitOptions {
  timeoutMs?: number
  intervalMs?: number
  /** What was being waited for, for the error message. */
  what?: string
}

/** Polls `condition` until it returns a truthy value; fails with WEIR_ERR_TIMEOUT after `timeoutMs`. */
export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitOptions = {}): Promise<NonNullable<T>> {
  const { timeoutMs = 20_000, intervalMs = 50, what = 'condition' } = options
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await condition()
      if (value) return value as NonNullable<T>
      last = value
    } catch (error) {
      last = error
    }
    if (Date.now() >= deadline) {
      throw new WeirError('WEIR_ERR_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`, { details: { last: String(last) } })
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** Rejects with WEIR_ERR_TIMEOUT if `promise` does not settle in time. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WeirError('WEIR_ERR_TIMEOUT', `timed out after ${timeoutMs} ms: ${what}`)), timeoutMs)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
