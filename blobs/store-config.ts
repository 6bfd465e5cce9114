// A blob store from configuration settings (command-line flags or environment variables): the file-system store
// for `fsRoot`, the S3-compatible store for `s3Bucket`, none when neither is given. Shared by `weir blobs collect`
// and the gateway service, so both read a store's settings the same way (docs/payloads.md).
import type { BlobStore } from './blob-store.ts'
import { createFsBlobStore } from './fs-blob-store.ts'
import { createS3BlobStore } from './s3-blob-store.ts'

export interface BlobStoreSettings {
  readonly fsRoot?: string | undefined
  readonly s3Bucket?: string | undefined
  readonly s3Endpoint?: string | undefined
  readonly s3Region?: string | undefined
  readonly s3Prefix?: string | undefined
  /** The store's name in references (default `fs` or `s3`). */
  readonly storeName?: string | undefined
}

/**
 * The store the settings name, or undefined when they name none. Problems are pushed to `violations` as
 * `<flagPrefix>fs-root`-style names. S3 credentials come from WEIR_S3_ACCESS_KEY_ID and WEIR_S3_SECRET_ACCESS_KEY
 * when both are set, else from the AWS SDK's usual chain (environment, profile, instance role).
 */
export function blobStoreFrom(settings: BlobStoreSettings, env: NodeJS.ProcessEnv, violations: string[], flagPrefix = '--'): BlobStore | undefined {
  const { fsRoot, s3Bucket, s3Endpoint, s3Region, s3Prefix, storeName } = settings
  if (fsRoot !== undefined && s3Bucket !== undefined) {
    violations.push(`${flagPrefix}fs-root and ${flagPrefix}s3-bucket name two stores: give one`)
    return undefined
  }
  if (fsRoot === undefined && s3Bucket === undefined) {
    const s3Only = [s3Endpoint && 's3-endpoint', s3Region && 's3-region', s3Prefix && 's3-prefix', storeName && 'store-name'].filter(Boolean)
    if (s3Only.length > 0) violations.push(`${s3Only.map((f) => `${flagPrefix}${f}`).join(', ')} given without ${flagPrefix}fs-root or ${flagPrefix}s3-bucket`)
    return undefined
  }
  if (s3Endpoint !== undefined) {
    try {
      new URL(s3Endpoint)
    } catch {
      violations.push(`${flagPrefix}s3-endpoint is not a URL: ${s3Endpoint}`)
      return undefined
    }
  }
  const name = storeName === undefined ? {} : { name: storeName }
  if (fsRoot !== undefined) return createFsBlobStore({ root: fsRoot, ...name })
  const keyId = env.WEIR_S3_ACCESS_KEY_ID
  const secret = env.WEIR_S3_SECRET_ACCESS_KEY
  if ((keyId === undefined || keyId === '') !== (secret === undefined || secret === '')) violations.push('set both WEIR_S3_ACCESS_KEY_ID and WEIR_S3_SECRET_ACCESS_KEY, or neither')
  return createS3BlobStore({
    bucket: s3Bucket as string,
    ...(s3Endpoint === undefined ? {} : { endpoint: s3Endpoint }),
    ...(s3Region === undefined ? {} : { region: s3Region }),
    ...(s3Prefix === undefined ? {} : { prefix: s3Prefix }),
    ...(keyId && secret ? { credentials: { accessKeyId: keyId, secretAccessKey: secret } } : {}),
    ...name,
  })
}
