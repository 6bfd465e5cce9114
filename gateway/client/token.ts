// The token: read from the source per connection, and refreshed over the open connection (an `auth` frame)
// shortly before the one in use expires, when the source is a function.
import type { WeirError } from '../../core/errors.ts'
import { gatewayError } from '../errors.ts'
import type { ClientFrame } from '../protocol.ts'
import type { TokenSource } from './options.ts'

export interface TokenKeeper {
  value(): Promise<string>
  /** Sends a token (from the source when not given) over the open connection. */
  refresh(token?: string): Promise<void>
  /** Plans the next refresh for a token valid until `expiresAt` (ms since the epoch). */
  schedule(expiresAt: number | undefined): void
  stop(): void
}

export interface TokenKeeperOptions {
  readonly token: TokenSource
  readonly refreshBeforeExpiryMs: number
  write(frame: ClientFrame): boolean
  /** A planned refresh failed. */
  onError(error: WeirError): void
}

export function createTokenKeeper(options: TokenKeeperOptions): TokenKeeper {
  const { token } = options
  let refreshTimer: ReturnType<typeof setTimeout> | undefined

  async function value(): Promise<string> {
    return typeof token === 'string' ? token : await token()
  }

  async function refresh(given?: string): Promise<void> {
    const next = given ?? (await value())
    if (!options.write({ type: 'auth', token: next })) throw gatewayError('WEIR_ERR_CLOSED', 'not connected: the next connection uses the token source')
  }

  return {
    value,
    refresh,
    schedule(expiresAt) {
      clearTimeout(refreshTimer)
      if (expiresAt === undefined || typeof token === 'string') return
      const delay = Math.max(1000, expiresAt - Date.now() - options.refreshBeforeExpiryMs)
      refreshTimer = setTimeout(() => {
        refresh().catch((error: unknown) => options.onError(error as WeirError))
      }, delay)
    },
    stop() {
      clearTimeout(refreshTimer)
    },
  }
}
