// Request classes of a chaos run with injected faults (`npm run chaos -- --faults error:<p>`): a request whose
// seeded roll injects a non-retriable error at one of its deliveries must fail with that handler error, and
// nothing else; one that also races its deadline may instead time out, beside exactly one trace of it.
const NON_RETRIABLE = 'WEIR_ERR_NON_RETRIABLE'
const EXPIRED = 'WEIR_ERR_COMMAND_EXPIRED'

/** 'fails-injected': an error result WEIR_ERR_NON_RETRIABLE and its one dead letter; '-or-times-out': or its timeout. */
export type InjectedRequestClass = 'fails-injected' | 'fails-injected-or-times-out'

export function isInjectedClass(expect: string): expect is InjectedRequestClass {
  return expect === 'fails-injected' || expect === 'fails-injected-or-times-out'
}

/**
 * Whether an outcome (with the request's late results' `weir.late` headers and dead letters' codes) is one the
 * class allows. A racing command either expired before its handler (timeout, the expiry dead letter) or met the
 * fault: its error result wins, or it reached the arbiter at the deadline and is kept as late beside the timeout.
 */
export function injectedAllowed(expect: InjectedRequestClass, outcome: { status: string; code: string | undefined }, late: readonly string[], dead: readonly string[]): boolean {
  if (outcome.status === 'error') return outcome.code === NON_RETRIABLE && late.length === 0 && dead.length === 1 && dead[0] === NON_RETRIABLE
  if (expect === 'fails-injected' || outcome.status !== 'timeout') return false
  return (late.length === 0 && dead.length === 1 && dead[0] === EXPIRED) || (late.length === 1 && late[0] === 'timeout' && dead.length === 1 && dead[0] === NON_RETRIABLE)
}
