// The topics a runtime needs before it joins: source topics co-partitioned, changelog and dead-letter topics
// created and replicated as asked; and the size limit of each dead-letter topic, so dead letters are cut to fit.
import { WeirError } from '../../core/errors.ts'
import { checkReplication, createAdmin, withReplication } from '../../kafka/index.ts'
import { DEFAULT_MAX_MESSAGE_BYTES } from './dead-letter-fit.ts'
import type { RuntimeContext } from './runtime-context.ts'
import { changelogTopic } from './state-restore.ts'

/** max.message.bytes per topic, asked from the broker once per topic. */
export interface RecordLimits {
  maxRecordBytes(topic: string): number
  learn(found: ReadonlyMap<string, number>): void
  close(): Promise<void>
}

export function createRecordLimits(ctx: RuntimeContext): RecordLimits {
  const limits = new Map<string, number>()
  const limitLookups = new Map<string, number>()
  let limitAdmin: ReturnType<typeof createAdmin> | undefined
  const learn = (found: ReadonlyMap<string, number>) => {
    for (const [name, limit] of found) limits.set(name, limit)
  }
  return {
    maxRecordBytes(topic) {
      if (ctx.options.maxMessageBytes !== undefined) return ctx.options.maxMessageBytes
      const known = limits.get(topic)
      if (known !== undefined) return known
      // Not known yet: ask (at most every 10 s per topic) and meanwhile assume the smallest limit seen.
      if ((limitLookups.get(topic) ?? -Infinity) + 10_000 <= ctx.now()) {
        limitLookups.set(topic, ctx.now())
        limitAdmin ??= createAdmin(ctx.client)
        void limitAdmin.maxMessageBytes([topic]).then(learn, () => {})
      }
      return Math.min(DEFAULT_MAX_MESSAGE_BYTES, ...limits.values())
    },
    learn,
    async close() {
      await limitAdmin?.close().catch(() => {})
    },
  }
}

export async function prepareTopics(ctx: RuntimeContext, limits: RecordLimits): Promise<void> {
  const { applicationId, topology, options, changelogStores, deadLetterTopic } = ctx
  const admin = createAdmin(ctx.client)
  try {
    const counts = new Map<string, number>()
    for (const topic of topology.sourceTopics) counts.set(topic, await admin.partitionCount(topic))
    const distinct = new Set(counts.values())
    if (distinct.size !== 1) {
      throw new WeirError(
        'WEIR_ERR_NOT_COPARTITIONED',
        `source topics must have the same partition count: ${[...counts].map(([t, c]) => `${t}=${c}`).join(', ')}`,
        { details: { partitions: Object.fromEntries(counts) } },
      )
    }
    const partitionCount = [...distinct][0] as number
    const internal = [...changelogStores.map((store) => changelogTopic(applicationId, store)), ...[...topology.sourceTopics, `${applicationId}-timers`].map(deadLetterTopic)]
    if (options.createTopics !== false) await admin.createTopics(withReplication([
      ...changelogStores.map((store) => ({
        name: changelogTopic(applicationId, store),
        partitions: partitionCount,
        configs: { 'cleanup.policy': 'compact' },
      })),
      ...[...topology.sourceTopics, `${applicationId}-timers`].map((topic) => ({ name: deadLetterTopic(topic), partitions: partitionCount })),
    ], options.replication))
    await checkReplication(admin, [...topology.sourceTopics, ...internal], options.replication, applicationId)
    // Only once the broker answered: after a refused login or a missing topic another request would only fail again.
    if (options.maxMessageBytes === undefined) {
      const deadLetterTopics = [...topology.sourceTopics, `${applicationId}-timers`].map(deadLetterTopic)
      limits.learn(await admin.maxMessageBytes(deadLetterTopics).catch(() => new Map<string, number>()))
    }
  } finally {
    await admin.close()
  }
}
