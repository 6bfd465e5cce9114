// An S3 blob store on the test run's S3-compatible server, in a bucket of its own.
import { createS3BlobStore, type S3BlobStoreOptions } from '../../blobs/s3-blob-store.ts'
import type { BlobStore } from '../../blobs/blob-store.ts'

export function s3Options(bucket: string): S3BlobStoreOptions {
  const endpoint = process.env.WEIR_S3_ENDPOINT
  if (endpoint === undefined) throw new Error('WEIR_S3_ENDPOINT is not set: run this file with npm test (it needs s3)')
  return {
    bucket: `weir-test-${bucket}`.toLowerCase(),
    endpoint,
    region: process.env.WEIR_S3_REGION ?? 'us-east-1',
    credentials: { accessKeyId: process.env.WEIR_S3_ACCESS_KEY_ID ?? '', secretAccessKey: process.env.WEIR_S3_SECRET_ACCESS_KEY ?? '' },
    createBucket: true,
  }
}

export function s3StoreForTest(bucket: string): BlobStore {
  return createS3BlobStore(s3Options(bucket))
}
