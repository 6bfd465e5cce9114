import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'

import { openRocksDbStore } from '../../state/rocksdb-store.ts'
import { conformance } from './kv-store-conformance.ts'

const dir = mkdtempSync(join(tmpdir(), 'weir-rocksdb-test-'))
after(() => rmSync(dir, { recursive: true, force: true }))

conformance('RocksDB store', { persistent: true, open: (id) => openRocksDbStore({ path: join(dir, id) }) })
