// A task's local state against its changelogs, like Kafka Streams' ProcessorStateManager and changelog reader:
// checkpoint files (how far each store is known to hold its changelog) and the restore that replays the rest.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import { channels, publish } from '../../core/diagnostics.ts'
import type { PartitionReader } from '../../kafka/index.ts'
import type { BatchOperation, ByteStore } from '../../state/kv-store.ts'
import { STORE_KINDS } from '../../state/store-kinds.ts'
import type { LiveTask, RuntimeContext } from './runtime-context.ts'

export function changelogTopic(applicationId: string, store: string): string {
  return `${applicationId}-${store}-changelog`
}

export async function readCheckpoints(dir: string): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(join(dir, 'checkpoints.json'), 'utf8')) as Record<string, string>
  } catch {
    return {}
  }
}

// Written after the store writes it covers, so a checkpoint is never ahead of its store; replaying
// changelog records the store already has is harmless (last write per key wins).
export async function writeCheckpoints(live: LiveTask): Promise<void> {
  await writeFile(join(live.dir, 'checkpoints.json'), JSON.stringify(live.checkpoints))
}

/** Brings every changelogged store of a task up to its changelog's end; returns the records replayed. */
export async function restoreStores(ctx: RuntimeContext, live: LiveTask, taskId: string, partition: number): Promise<number> {
  ctx.totals.restoring++
  let restoredRecords = 0
  try {
    for (const name of ctx.changelogStores) restoredRecords += await restoreStore(ctx, live, taskId, partition, name, live.stores.get(name) as ByteStore)
  } finally {
    ctx.totals.restoring--
  }
  ctx.totals.restoredRecords += restoredRecords
  return restoredRecords
}

async function restoreStore(ctx: RuntimeContext, live: LiveTask, taskId: string, partition: number, name: string, store: ByteStore): Promise<number> {
  const { applicationId } = ctx
  const topic = changelogTopic(applicationId, name)
  const restorer = ctx.restoreReader as PartitionReader
  const [end] = await restorer.offsets([{ topic, partition }], 'latest')
  const [start] = await restorer.offsets([{ topic, partition }], 'earliest')
  if (end === undefined || start === undefined) return 0
  // A store that keeps nothing across close and open starts empty: its checkpoint does not describe it.
  const kind = ctx.topology.stores[name]?.backend
  let position = kind !== undefined && !STORE_KINDS[kind].persistent ? start.offset : BigInt(live.checkpoints[name] ?? start.offset)
  if (position < start.offset || position > end.offset) {
    // The checkpoint does not fit this changelog (recreated or truncated): rebuild from scratch.
    await store.clear()
    position = start.offset
  }
  let restored = 0
  while (position < end.offset) {
    const batches = await restorer.fetch([{ topic, partition, offset: position }], { maxWaitMs: 50 })
    for (const batch of batches) {
      if (batch.outOfRange) {
        await store.clear()
        position = start.offset
        continue
      }
      const operations: BatchOperation[] = batch.records.map((r) =>
        r.value === undefined ? { type: 'delete', key: r.key ?? Buffer.alloc(0) } : { type: 'put', key: r.key ?? Buffer.alloc(0), value: r.value },
      )
      if (operations.length > 0) await store.write(operations)
      restored += operations.length
      position = batch.nextOffset
      publish(channels.restoreProgress, { applicationId, taskId, store: name, restored, remaining: end.offset - position })
    }
  }
  live.checkpoints[name] = String(position)
  const restoredHook = ctx.storeHooks.get(name)?.restored
  if (restored > 0 && restoredHook !== undefined) await restoredHook(store)
  return restored
}
