// The application's callbacks: what one throws goes to onError, never into the client's own bookkeeping.
import type { WeirError } from '../../core/errors.ts'
import { gatewayError } from '../errors.ts'

export interface Callbacks {
  /** Runs an application callback; what it throws becomes a WEIR_ERR_CALLBACK error for onError. */
  notify<A extends unknown[]>(name: string, callback: ((...args: A) => void) | undefined, ...args: A): void
  /** Hands an error that answers no call to the client's onError. */
  tellError(error: WeirError): void
}

export function createCallbacks(onError: ((error: WeirError) => void) | undefined): Callbacks {
  function tellError(error: WeirError): void {
    try {
      onError?.(error)
    } catch {
      // onError itself threw: there is nobody left to tell.
    }
  }
  return {
    notify(name, callback, ...args) {
      if (callback === undefined) return
      try {
        callback(...args)
      } catch (cause) {
        tellError(gatewayError('WEIR_ERR_CALLBACK', `the ${name} callback threw: ${cause instanceof Error ? cause.message : String(cause)}`, { cause }))
      }
    },
    tellError,
  }
}
