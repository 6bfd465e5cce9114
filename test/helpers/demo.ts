// The demo (scripts/demo/start.ts) on the test broker: quiet, on free ports, with topics of its own; stopped,
// and its topics (the service's, the changelogs and dead-letter topics the worker made) deleted after the test.
import type { Demo } from '../../scripts/demo.ts'
import { startDemo } from '../../scripts/demo.ts'
import { admin, brokers, uniqueName } from './kafka.ts'

export async function startTestDemo(t: { after(fn: () => unknown): void }, options: { name: string; partitions: number }): Promise<Demo> {
  const prefix = uniqueName(options.name)
  const started: { demo?: Demo } = {}
  // Registered before the start, so a demo that fails half-way still leaves nothing behind.
  t.after(async () => {
    await started.demo?.stop()
    const client = admin()
    const mine = (await client.listTopics()).filter((name) => name.startsWith(prefix))
    if (mine.length > 0) await client.deleteTopics(mine).catch(() => {})
  })
  const quiet = { step: () => {}, done: () => {} }
  started.demo = await startDemo({ brokers: brokers(), port: 0, gatewayPort: 0, prefix, partitions: options.partitions, progress: quiet, readyTimeoutMs: 90_000 })
  return started.demo
}
