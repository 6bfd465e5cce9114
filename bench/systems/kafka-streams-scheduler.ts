// Kafka Streams' delayed delivery as a bench system (bench/baselines/kafka-streams, mode `delayed`): the same
// scheduler request bytes as weir's, a time-ordered RocksDB store scanned by a wall-clock punctuator,
// exactly_once_v2.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import type { DelayedEnvelope, DelayedRunContext, DelayedSystem } from '../delayed.ts'
import { produceScheduleRequests, waitCommitted } from './schedule-requests.ts'

export function kafkaStreamsScheduler(classpath: string): DelayedSystem {
  let java: ChildProcess | undefined
  let stateDir: string | undefined
  let requests = ''
  let applicationId = ''
  let log = ''
  return {
    name: 'kafkaStreams',
    async start(context: DelayedRunContext) {
      requests = `bench-${context.runId}.ks-schedule`
      applicationId = `bench-ks-scheduler-${context.runId}`
      await context.admin.createTopics([{ name: requests, partitions: 1 }])
      stateDir = await mkdtemp(join(tmpdir(), 'weir-bench-ks-'))
      java = spawn(
        'java',
        ['-Xms256m', '-Xmx2g', '-XX:+UseG1GC', '-cp', classpath, 'dev.weir.bench.Main', '--mode', 'delayed', '--bootstrap-servers', context.brokers.join(','),
          '--application-id', applicationId, '--input', requests, '--output', context.destination, '--eos', 'on', '--state-dir', stateDir],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      const started = java
      await new Promise<void>((resolveReady, reject) => {
        const onData = (chunk: Buffer) => {
          log = (log + chunk.toString()).slice(-20_000)
          if (log.includes('weir-streams: RUNNING')) resolveReady()
        }
        started.stdout?.on('data', onData)
        started.stderr?.on('data', onData)
        started.once('exit', (code) => reject(new Error(`Kafka Streams exited (${code}):\n${log}`)))
      })
    },
    async load(envelopes: readonly DelayedEnvelope[], context: DelayedRunContext) {
      await produceScheduleRequests(context.brokers, requests, envelopes)
    },
    async ingested(context: DelayedRunContext) {
      await waitCommitted(context.admin, applicationId, requests, context.pending, () => (java?.exitCode === null ? undefined : `Kafka Streams exited:\n${log}`))
    },
    async stop() {
      const current = java
      java = undefined
      if (current !== undefined && current.exitCode === null) {
        const exited = new Promise((r) => current.once('exit', r))
        current.kill('SIGTERM')
        await exited
      }
      if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true })
    },
  }
}
