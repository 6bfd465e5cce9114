// Per-connection token bucket: `burst` frames at once, refilled at `ratePerSecond`.

export interface TokenBucket {
  /** Takes one token; returns 0 when allowed, else the ms until a token is available. */
  take(now: number): number
}

export function createTokenBucket(ratePerSecond: number, burst: number, now: number): TokenBucket {
  let tokens = burst
  let last = now
  return {
    take(at) {
      tokens = Math.min(burst, tokens + ((at - last) * ratePerSecond) / 1000)
      last = at
      if (tokens >= 1) {
        tokens -= 1
        return 0
      }
      return Math.ceil(((1 - tokens) * 1000) / ratePerSecond)
    },
  }
}
