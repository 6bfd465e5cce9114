// Against a real S3-compatible server (S3Proxy started by scripts/infra/s3.ts, or WEIR_S3_ENDPOINT).
import { randomBytes } from 'node:crypto'

import { blobStoreConformance } from './blob-store-conformance.ts'
import { s3StoreForTest } from './s3-helper.ts'

blobStoreConformance('S3 blob store', async () => s3StoreForTest(`conf-${randomBytes(4).toString('hex')}`))
