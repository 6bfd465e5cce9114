// The store kinds a topology can declare (`StoreSpec.backend`), with what the runtime may rely on of each, and the
// opener type that turns a declared store into a byte store. One table, so a new kind is one row here plus its
// opener in open-store.ts; the compiler points at both.
import type { ByteStore } from './kv-store.ts'

export interface StoreKindCapabilities {
  /**
   * Keeps its data across close and open (on disk): a restore resumes from the task's checkpoint. A store that is
   * not persistent starts empty on every assignment and is rebuilt from the start of its changelog.
   */
  readonly persistent: boolean
}

export const STORE_KINDS = {
  rocksdb: { persistent: true },
  memory: { persistent: false },
} as const satisfies Record<string, StoreKindCapabilities>

export type StoreKind = keyof typeof STORE_KINDS

export function isStoreKind(value: unknown): value is StoreKind {
  return typeof value === 'string' && Object.hasOwn(STORE_KINDS, value)
}

/** Opens (or creates) the local store behind one store of one task; `path` is its own folder. */
export type StoreOpener = (spec: { name: string; backend: StoreKind; path: string }) => Promise<ByteStore>
