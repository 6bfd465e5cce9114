import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'

import { createFsBlobStore } from '../../blobs/fs-blob-store.ts'
import { blobStoreConformance } from './blob-store-conformance.ts'

const roots: string[] = []
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true })
})

blobStoreConformance('file-system blob store', async () => {
  const root = await mkdtemp(join(tmpdir(), 'weir-blobs-'))
  roots.push(root)
  return createFsBlobStore({ root })
})
