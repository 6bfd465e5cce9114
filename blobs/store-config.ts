// A blob store from configuration settings (command-line flags or environment variables): the file-system store
// for `fsRoot`, the S3-compatible store for `s3Bucket`, none when neither is given. Shared by `weir blobs collect`
// and the gateway service, so both read a store's settings the same way and name the same flags in problems
// (docs/payloads.md).
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

// The same rule as createS3BlobStore's, checked here so the problem names the flag.
const PREFIX = /^([A-Za-z0-9._-]+\/)*$/

/**
 * The store the settings name, or undefined when they name none or have a problem. Problems are pushed to
 * `violations`, naming the settings as `<flagPrefix>fs-root`, `<flagPrefix>s3-bucket`, ...; a store is made only
 * when there are none, so a caller that gives up leaves no client open. S3 credentials come from
 * WEIR_S3_ACCESS_KEY_ID and WEIR_S3_SECRET_ACCESS_KEY when both are set, else from the AWS SDK's usual chain
 * (environment, profile, instance role); one of the two alone is a problem, not a silent fall back to the chain.
 */
export function blobStoreFrom(settings: BlobStoreSettings, env: NodeJS.ProcessEnv, violations: string[], flagPrefix = '--'): BlobStore | undefined {
  const { fsRoot, s3Bucket, s3Endpoint, s3Region, s3Prefix, storeName } = settings
  const flag = (name: string) => `${flagPrefix}${name}`
  const s3Given = ([['s3-endpoint', s3Endpoint], ['s3-region', s3Region], ['s3-prefix', s3Prefix]] as const).filter(([, v]) => v !== undefined).map(([name]) => flag(name))
  const keyId = env.WEIR_S3_ACCESS_KEY_ID || undefined
  const secret = env.WEIR_S3_SECRET_ACCESS_KEY || undefined
  if (fsRoot !== undefined && s3Bucket !== undefined) {
    violations.push(`${flag('fs-root')} and ${flag('s3-bucket')} name two stores: give one`)
    return undefined
  }
  if (fsRoot === undefined && s3Bucket === undefined) {
    const given = storeName === undefined ? s3Given : [...s3Given, flag('store-name')]
    if (given.length > 0) violations.push(`${given.join(', ')} given without ${flag('fs-root')} or ${flag('s3-bucket')}`)
    return undefined
  }
  const problems: string[] = []
  if (storeName !== undefined && storeName.trim() !== storeName) problems.push(`${flag('store-name')} must not start or end with spaces: ${JSON.stringify(storeName)}`)
  if (fsRoot !== undefined) {
    if (s3Given.length > 0) problems.push(`${s3Given.join(', ')} given with ${flag('fs-root')} (they are for ${flag('s3-bucket')})`)
  } else {
    if (s3Endpoint !== undefined && !isHttpUrl(s3Endpoint)) problems.push(`${flag('s3-endpoint')} is not an http(s) URL: ${s3Endpoint}`)
    if (s3Prefix !== undefined && !PREFIX.test(s3Prefix)) problems.push(`${flag('s3-prefix')} must end with / (segments of letters, digits, ., _, -): ${JSON.stringify(s3Prefix)}`)
    if ((keyId === undefined) !== (secret === undefined)) problems.push('set both WEIR_S3_ACCESS_KEY_ID and WEIR_S3_SECRET_ACCESS_KEY, or neither')
  }
  if (problems.length > 0) {
    violations.push(...problems)
    return undefined
  }
  const name = storeName === undefined ? {} : { name: storeName }
  if (fsRoot !== undefined) return createFsBlobStore({ root: fsRoot, ...name })
  return createS3BlobStore({
    bucket: s3Bucket as string,
    ...(s3Endpoint === undefined ? {} : { endpoint: s3Endpoint }),
    ...(s3Region === undefined ? {} : { region: s3Region }),
    ...(s3Prefix === undefined ? {} : { prefix: s3Prefix }),
    ...(keyId !== undefined && secret !== undefined ? { credentials: { accessKeyId: keyId, secretAccessKey: secret } } : {}),
    ...name,
  })
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}
