import { invalidOptions } from '../core/errors.ts'

// Retry policies: exponential backoff with full jitter, bounded by attempts and by total time.

export interface RetryPolicy {
  /** Attempts in all, the first included (default 3). */
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
  /** Give up when the next wait would pass this much time since the first attempt (default 10 s). */
  maxTotalMs: number
  /** 'full': a random delay between 0 and the exponential bound; 'none': the bound itself. */
  jitter: 'full' | 'none'
}

export interface OutOfOrderPolicy extends RetryPolicy {
  schedulerTopic: string
}

export function resolveRetryPolicy(input: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy: RetryPolicy = {
    attempts: input.attempts ?? 3,
    baseDelayMs: input.baseDelayMs ?? 50,
    maxDelayMs: input.maxDelayMs ?? 2000,
    maxTotalMs: input.maxTotalMs ?? 10_000,
    jitter: input.jitter ?? 'full',
  }
  const violations: string[] = []
  if (!(Number.isInteger(policy.attempts) && policy.attempts >= 1)) violations.push('attempts must be an integer >= 1')
  for (const key of ['baseDelayMs', 'maxDelayMs', 'maxTotalMs'] as const) {
    if (!(Number.isFinite(policy[key]) && policy[key] >= 0)) violations.push(`${key} must be a number >= 0`)
  }
  if (policy.jitter !== 'full' && policy.jitter !== 'none') violations.push("jitter must be 'full' or 'none'")
  if (violations.length > 0) throw invalidOptions('retry policy', violations)
  return Object.freeze(policy)
}

/** Wait before attempt `attempt + 1`: min(max, base * 2^(attempt-1)), jittered. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const bound = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1))
  return policy.jitter === 'full' ? Math.floor(random() * bound) : bound
}
