import { createMemoryStore } from '../../state/memory-store.ts'
import { conformance } from './kv-store-conformance.ts'

conformance('memory store', { persistent: false, open: async () => createMemoryStore() })
