// Blobs in S3-compatible object storage (AWS S3, MinIO, S3Proxy, Ceph RGW, R2...), through AWS's own SDK
// (@aws-sdk/client-s3, and @aws-sdk/lib-storage's multipart upload for streams). Streams are uploaded in parts of
// `partBytes` with one part in flight, so a 100 MiB upload holds about two parts in memory.
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { Readable } from 'node:stream'

import { invalidOptions, isWeirError } from '../core/errors.ts'
import { blobMissing, blobStoreFailed, checkKey, hashing } from './blob-store.ts'
import type { BlobBody, BlobEntry, BlobStore, PutOptions, PutResult } from './blob-store.ts'

export interface S3BlobStoreOptions {
  bucket: string
  /** e.g. http://127.0.0.1:9000; omitted for AWS itself (the region's endpoint). */
  endpoint?: string
  region?: string
  credentials?: { accessKeyId: string; secretAccessKey: string }
  /** Keys under this prefix (a folder of the bucket), e.g. `weir/`. */
  prefix?: string
  /** Path-style addressing (bucket in the path), which most S3-compatible servers need (default true with an endpoint). */
  forcePathStyle?: boolean
  /** Written into references (default `s3`). */
  name?: string
  /** Multipart part size for streamed puts (default 5 MiB, S3's minimum). */
  partBytes?: number
  /** Creates the bucket on first use when it does not exist (default false). */
  createBucket?: boolean
}

const MIN_PART = 5 * 1024 * 1024

export function createS3BlobStore(options: S3BlobStoreOptions): BlobStore {
  const violations: string[] = []
  if (typeof options?.bucket !== 'string' || options.bucket.length === 0) violations.push('bucket is required')
  if (options?.partBytes !== undefined && (!Number.isInteger(options.partBytes) || options.partBytes < MIN_PART)) violations.push(`partBytes must be an integer >= ${MIN_PART}`)
  if (options?.prefix !== undefined && !/^([A-Za-z0-9._-]+\/)*$/.test(options.prefix)) violations.push('prefix must be empty or end with / (segments of letters, digits, ., _, -)')
  if (violations.length > 0) throw invalidOptions('createS3BlobStore', violations)
  const name = options.name ?? 's3'
  const prefix = options.prefix ?? ''
  const bucket = options.bucket
  const partBytes = options.partBytes ?? MIN_PART
  const client = new S3Client({
    region: options.region ?? 'us-east-1',
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
    // The SDK's default checksums (CRC32 trailers) are not understood by every S3-compatible server; weir checks SHA-256 itself.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  let bucketReady: Promise<void> | undefined
  const ready = (): Promise<void> => {
    if (options.createBucket !== true) return Promise.resolve()
    bucketReady ??= (async () => {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }))
      } catch {
        await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((error: unknown) => {
          if ((error as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw error
        })
      }
    })().catch((error: unknown) => {
      bucketReady = undefined
      throw blobStoreFailed(name, 'create bucket', bucket, error)
    })
    return bucketReady
  }
  const objectKey = (key: string) => {
    checkKey(key)
    return `${prefix}${key}`
  }
  const isMissing = (error: unknown) => {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } }
    return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404
  }
  const open = async (key: string, operation: string) => {
    const Key = objectKey(key)
    await ready()
    try {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key }))
      return response.Body as Readable
    } catch (error) {
      throw isMissing(error) ? blobMissing(name, key, error) : blobStoreFailed(name, operation, key, error)
    }
  }

  return Object.freeze({
    name,
    async put(key: string, body: BlobBody, putOptions: PutOptions = {}): Promise<PutResult> {
      const Key = objectKey(key)
      const ContentType = putOptions.contentType ?? 'application/octet-stream'
      await ready()
      try {
        if (body instanceof Uint8Array) {
          const hashed = hashing(body, putOptions.maxBytes)
          for await (const _ of hashed.chunks);
          await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: body, ContentType, ContentLength: body.byteLength }))
          return hashed.result()
        }
        const hashed = hashing(body, putOptions.maxBytes)
        const upload = new Upload({ client, queueSize: 1, partSize: partBytes, leavePartsOnError: false, params: { Bucket: bucket, Key, Body: Readable.from(hashed.chunks, { objectMode: false }), ContentType } })
        await upload.done()
        return hashed.result()
      } catch (error) {
        if (isWeirError(error)) throw error
        const inner = (error as { cause?: unknown }).cause
        if (isWeirError(inner)) throw inner
        throw blobStoreFailed(name, 'put', key, error)
      }
    },
    async get(key: string): Promise<Buffer> {
      const stream = await open(key, 'get')
      const chunks: Buffer[] = []
      try {
        for await (const chunk of stream) chunks.push(chunk as Buffer)
      } catch (error) {
        throw blobStoreFailed(name, 'get', key, error)
      }
      return Buffer.concat(chunks)
    },
    read: (key: string) => open(key, 'read'),
    async delete(key: string): Promise<void> {
      const Key = objectKey(key)
      await ready()
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key }))
      } catch (error) {
        if (!isMissing(error)) throw blobStoreFailed(name, 'delete', key, error)
      }
    },
    async *list(keyPrefix = ''): AsyncIterable<BlobEntry> {
      await ready()
      let token: string | undefined
      do {
        let page
        try {
          page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}${keyPrefix}`, ...(token === undefined ? {} : { ContinuationToken: token }) }))
        } catch (error) {
          throw blobStoreFailed(name, 'list', keyPrefix, error)
        }
        for (const object of page.Contents ?? []) {
          // Folder markers (S3Proxy's file-system backend lists the folders it made) are not blobs.
          if (object.Key === undefined || object.Key.endsWith('/')) continue
          yield { key: object.Key.slice(prefix.length), size: object.Size ?? 0, lastModified: object.LastModified?.getTime() ?? 0 }
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined
      } while (token !== undefined)
    },
    async close() {
      client.destroy()
    },
  })
}
