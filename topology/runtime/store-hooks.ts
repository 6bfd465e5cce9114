// What the runtime asks of a store beyond its bytes: which of its writes go to the changelog, and what to derive
// after a restore. A store laid out over a byte store (the timers' two key spaces) declares both here, so the
// runtime restores and commits every store the same way and never knows a layout.
import type { ByteStore } from '../../state/kv-store.ts'
import { timerStoreName } from '../define.ts'
import type { Topology } from '../define.ts'
import { timerStoreHooks } from './timers.ts'

export interface StoreHooks {
  /** False for keys the changelog leaves out (derived data); every key goes to the changelog when absent. */
  readonly changelogged?: (key: Buffer) => boolean
  /** Runs after a restore that wrote records: rebuilds what the changelog leaves out. */
  readonly restored?: (store: ByteStore) => Promise<unknown>
}

/** The hooks of each store of the topology that has any. */
export function storeHooksOf(topology: Topology): ReadonlyMap<string, StoreHooks> {
  const hooks = new Map<string, StoreHooks>()
  for (const [name, spec] of Object.entries(topology.processors)) {
    if (spec.timers === true) hooks.set(timerStoreName(name), timerStoreHooks)
  }
  return hooks
}
