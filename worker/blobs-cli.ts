// `weir blobs collect`: the orphan collector (blobs/collector.ts) from the command line, for a cron job or an
// operator. The store is a folder (--fs-root) or an S3 bucket (--s3-bucket, with --s3-endpoint for an
// S3-compatible server; credentials from WEIR_S3_ACCESS_KEY_ID / WEIR_S3_SECRET_ACCESS_KEY, else the AWS SDK's
// usual chain: AWS_ACCESS_KEY_ID, profiles, instance roles).
import { parseArgs } from 'node:util'

import type { BlobStore } from '../blobs/blob-store.ts'
import { collectOrphanBlobs, DEFAULT_GRACE_MS } from '../blobs/collector.ts'
import { blobStoreFrom } from '../blobs/store-config.ts'
import { isWeirError } from '../core/errors.ts'
import { readKafkaConfig } from '../kafka/index.ts'
import { subcommand } from './subcommand.ts'

export function blobsUsage(): string {
  return `Usage: weir blobs collect --topic T [--topic T2 ...] (--fs-root DIR | --s3-bucket B [--s3-endpoint URL] [--s3-region R] [--s3-prefix P])
                          [--store-name NAME] [--grace-ms N] [--dry-run] [--json] [--brokers B | --kafka-config FILE]

Deletes the blobs under payloads/ that no committed record of the given topics references and that are older than
the grace period (default ${DEFAULT_GRACE_MS} ms). Give every topic that may hold references (docs/payloads.md).
`
}

export async function blobsMain(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const picked = subcommand('weir blobs', argv, ['collect'], blobsUsage)
  if (typeof picked === 'number') return picked
  const { rest } = picked
  let values
  try {
    values = parseArgs({
      args: rest,
      options: {
        topic: { type: 'string', multiple: true },
        brokers: { type: 'string' },
        'kafka-config': { type: 'string' },
        'fs-root': { type: 'string' },
        's3-bucket': { type: 'string' },
        's3-endpoint': { type: 'string' },
        's3-region': { type: 'string' },
        's3-prefix': { type: 'string' },
        'store-name': { type: 'string' },
        'grace-ms': { type: 'string' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (error) {
    process.stderr.write(`weir blobs collect: ${error instanceof Error ? error.message : String(error)}\n\n${blobsUsage()}`)
    return 2
  }
  const problems: string[] = []
  const properties = readKafkaConfig(values['kafka-config'] ?? (env.WEIR_KAFKA_CONFIG || undefined), problems)
  const brokers = (values.brokers ?? env.KAFKA_BOOTSTRAP_SERVERS ?? properties?.brokers?.join(',') ?? '').split(',').map((b) => b.trim()).filter((b) => b.length > 0)
  const topics = values.topic ?? []
  if (topics.length === 0) problems.push('--topic is required (once per topic)')
  if (brokers.length === 0) problems.push('--brokers (or KAFKA_BOOTSTRAP_SERVERS) is required')
  if ((values['fs-root'] === undefined) === (values['s3-bucket'] === undefined)) problems.push('exactly one of --fs-root and --s3-bucket is required')
  const graceMs = values['grace-ms'] === undefined ? DEFAULT_GRACE_MS : Number(values['grace-ms'])
  if (!(Number.isInteger(graceMs) && graceMs >= 0)) problems.push('--grace-ms must be a non-negative integer')
  if (problems.length > 0) {
    process.stderr.write(`weir blobs collect: ${problems.join('; ')}\n\n${blobsUsage()}`)
    return 2
  }
  let store: BlobStore | undefined
  try {
    store = blobStoreFrom(
      { fsRoot: values['fs-root'], s3Bucket: values['s3-bucket'], s3Endpoint: values['s3-endpoint'], s3Region: values['s3-region'], s3Prefix: values['s3-prefix'], storeName: values['store-name'] },
      env,
      problems,
    )
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error))
  }
  if (store === undefined || problems.length > 0) {
    process.stderr.write(`weir blobs collect: ${problems.join('; ')}\n\n${blobsUsage()}`)
    await store?.close()
    return 2
  }
  try {
    const dryRun = values['dry-run'] === true
    const report = await collectOrphanBlobs({ store, topics, brokers, ...(properties === undefined ? {} : { connection: properties.connection }), graceMs, dryRun })
    if (values.json === true) process.stdout.write(`${JSON.stringify({ dryRun, ...report })}\n`)
    else {
      for (const key of report.deleted) process.stdout.write(`${dryRun ? 'would delete' : 'deleted'} ${key}\n`)
      process.stdout.write(`${report.deleted.length} orphan(s) ${dryRun ? 'would be deleted' : 'deleted'}; ${report.blobs} blob(s), ${report.referenced} referenced, ${report.recordsRead} record(s) read\n`)
    }
    return 0
  } catch (error) {
    const code = isWeirError(error) ? error.code : 'unexpected'
    process.stderr.write(`weir blobs collect: failed (${code}): ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  } finally {
    await store.close()
  }
}

if (import.meta.main) {
  blobsMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`weir blobs: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
}
