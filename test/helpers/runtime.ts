// A stream runtime in the test process, on the test broker, as `weir worker` runs one: RocksDB stores, a state
// folder of its own, and the short session timeout and heartbeat every Kafka test uses (a rebalance after a
// stop takes seconds, not the default 45). Stopped, and its folder deleted, after the test.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { openStore } from '../../state/open-store.ts'
import type { StreamRuntime, StreamRuntimeOptions } from '../../topology/runtime/runtime-options.ts'
import { createStreamRuntime } from '../../topology/runtime/stream-runtime.ts'
import { brokers } from './kafka.ts'

export type TestRuntimeOptions = Partial<StreamRuntimeOptions> & Pick<StreamRuntimeOptions, 'applicationId' | 'topology'> & {
  /** Name prefix of the temporary state folder made when `stateDir` is not given (default `weir-state-`). */
  stateDirPrefix?: string
  /** false: made but not started, for a test that starts it itself (to see start fail, say). Default true. */
  start?: boolean
}

/**
 * Makes (and by default starts) a runtime; after the test it is stopped and the state folder it made is deleted
 * (a `stateDir` given by the caller is the caller's to delete: tests that restart on the same state pass one).
 */
export async function startTestRuntime(t: { after(fn: () => unknown): void }, options: TestRuntimeOptions): Promise<{ runtime: StreamRuntime; stateDir: string }> {
  const { stateDirPrefix, start, ...overrides } = options
  const stateDir = overrides.stateDir ?? (await mkdtemp(join(tmpdir(), stateDirPrefix ?? 'weir-state-')))
  const runtime = createStreamRuntime({ brokers: brokers(), openStore, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, ...overrides, stateDir })
  t.after(async () => {
    await runtime.stop()
    if (overrides.stateDir === undefined) await rm(stateDir, { recursive: true, force: true })
  })
  if (start !== false) await runtime.start()
  return { runtime, stateDir }
}
