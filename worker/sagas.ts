// `weir saga list|inspect`: where each saga stands, read from the changelog topic of the saga worker's store
// `sagas` (`<applicationId>-sagas-changelog`). The changelog holds every committed state of every saga (the
// runtime writes it in the transaction of each transition), so reading it to its end gives the latest
// committed state per saga id without asking a worker; a tombstone is a saga forgotten after its retention.
// Exit codes: 0 done, 1 failure or (inspect) no such saga, 2 invalid arguments.
import { parseArgs } from 'node:util'

import { WeirError, isWeirError } from '../core/errors.ts'
import { createAdmin, createPartitionReader, readKafkaConfig } from '../kafka/index.ts'
import type { KafkaConnection } from '../kafka/index.ts'
import { SAGA_STORE } from '../processors/saga-coordinator.ts'
import { SAGA_STATES } from '../processors/saga-state.ts'
import type { SagaState, SagaStatus } from '../processors/saga-state.ts'

export interface ReadSagasOptions {
  brokers: readonly string[]
  connection?: KafkaConnection
  /** The changelog topic (or derive it from the saga worker's application id). */
  topic: string
}

export function sagaChangelogTopic(applicationId: string): string {
  return `${applicationId}-${SAGA_STORE}-changelog`
}

/** The latest committed state of every saga in the changelog, by saga id (read up to its end at the call). */
export async function readSagas(options: ReadSagasOptions): Promise<Map<string, SagaState>> {
  const admin = createAdmin({ brokers: options.brokers, connection: options.connection, clientId: 'weir-saga' })
  const reader = createPartitionReader({ brokers: options.brokers, connection: options.connection, clientId: 'weir-saga', maxWaitMs: 100 })
  const sagas = new Map<string, SagaState>()
  try {
    const count = await admin.partitionCount(options.topic)
    const partitions = Array.from({ length: count }, (_, partition) => ({ topic: options.topic, partition }))
    const ends = new Map((await reader.offsets(partitions, 'latest')).map((o) => [o.partition, o.offset]))
    const positions = new Map((await reader.offsets(partitions, 'earliest')).map((o) => [o.partition, o.offset]))
    const open = () => [...positions].filter(([p, offset]) => offset < (ends.get(p) ?? 0n)).map(([partition, offset]) => ({ topic: options.topic, partition, offset }))
    for (let todo = open(); todo.length > 0; todo = open()) {
      for (const batch of await reader.fetch(todo)) {
        if (batch.outOfRange) throw new WeirError('WEIR_ERR_KAFKA', `${options.topic}/${batch.partition}: position out of range (the log was truncated meanwhile)`)
        const end = ends.get(batch.partition) ?? 0n
        for (const record of batch.records) {
          if (record.offset >= end || record.key === undefined) continue
          const id = record.key.toString('utf8')
          if (record.value === undefined || record.value.length === 0) sagas.delete(id)
          else sagas.set(id, JSON.parse(record.value.toString('utf8')) as SagaState)
        }
        positions.set(batch.partition, batch.nextOffset > end ? end : batch.nextOffset)
      }
    }
    return sagas
  } finally {
    await reader.close().catch(() => {})
    await admin.close().catch(() => {})
  }
}

const iso = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString())

/** The step a saga is at, as `weir saga` shows it: `payment (attempt 2)`, `undo inventory`, or `-` once ended. */
export function sagaPosition(state: SagaState, stepNames: readonly string[] = []): string {
  if (state.status === 'completed' || state.status === 'compensated') return '-'
  const name = stepNames[state.step] ?? latestStepName(state) ?? `step ${state.step}`
  return `${state.phase === 'undo' ? 'undo ' : ''}${name} (attempt ${state.attempt})`
}

function latestStepName(state: SagaState): string | undefined {
  for (let i = state.history.length - 1; i >= 0; i--) {
    const entry = state.history[i]
    if (entry?.step !== undefined && (entry.event === 'step-started' || entry.event === 'compensation-started')) return entry.step
  }
  return undefined
}

export function formatSagaLine(state: SagaState): string {
  return `${state.sagaId}  ${state.status}  ${sagaPosition(state)}  started ${iso(state.startedAt)}  updated ${iso(state.updatedAt)}${state.failure === undefined ? '' : `  failed at ${state.failure.step}: ${state.failure.code}`}`
}

export function formatSaga(state: SagaState): string {
  const lines = [
    `saga ${state.saga} ${state.sagaId}: ${state.status}`,
    `  at: ${sagaPosition(state)}`,
    `  started ${iso(state.startedAt)}, updated ${iso(state.updatedAt)}, ended ${iso(state.endedAt)}`,
    `  request ${state.requestId}, trace ${state.parent.trace?.traceparent ?? '-'}`,
    `  data: ${JSON.stringify(state.data)}`,
    `  results: ${JSON.stringify(state.results)}`,
  ]
  if (state.failure !== undefined) lines.push(`  failure: ${state.failure.step}: ${state.failure.code}: ${state.failure.message}`)
  lines.push('  history:')
  for (const h of state.history) lines.push(`    ${iso(h.at)}  ${h.event}${h.step === undefined ? '' : ` ${h.step}`}${h.attempt === undefined ? '' : ` #${h.attempt}`}${h.detail === undefined ? '' : `  ${h.detail}`}`)
  return lines.join('\n')
}

export function sagaUsage(): string {
  return [
    'weir saga list    (--application <saga worker id> | --changelog <topic>) [--state running|compensating|completed|compensated] [--limit N] [--brokers B] [--json]',
    'weir saga inspect <saga id> (--application <saga worker id> | --changelog <topic>) [--brokers B] [--json]',
    '',
  ].join('\n')
}

export async function sagaMain(argv: string[], env: NodeJS.ProcessEnv = process.env, out: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  const [command, ...rest] = argv
  if (command !== 'list' && command !== 'inspect') {
    process.stderr.write(`weir saga: unknown command ${command ?? '(none)'}\n\n${sagaUsage()}`)
    return 2
  }
  let parsed
  try {
    parsed = parseArgs({
      args: rest,
      options: {
        application: { type: 'string' },
        changelog: { type: 'string' },
        state: { type: 'string' },
        limit: { type: 'string' },
        brokers: { type: 'string' },
        'kafka-config': { type: 'string' },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: command === 'inspect',
    })
  } catch (error) {
    process.stderr.write(`weir saga ${command}: ${error instanceof Error ? error.message : String(error)}\n\n${sagaUsage()}`)
    return 2
  }
  const { values, positionals } = parsed
  const problems: string[] = []
  const properties = readKafkaConfig(values['kafka-config'] ?? (env.WEIR_KAFKA_CONFIG || undefined), problems)
  const brokers = (values.brokers ?? env.KAFKA_BOOTSTRAP_SERVERS ?? properties?.brokers?.join(',') ?? '').split(',').map((b) => b.trim()).filter((b) => b.length > 0)
  if (brokers.length === 0) problems.push('--brokers (or KAFKA_BOOTSTRAP_SERVERS) is required')
  if ((values.application === undefined) === (values.changelog === undefined)) problems.push('give one of --application and --changelog')
  const state = values.state
  if (state !== undefined && !(SAGA_STATES as readonly string[]).includes(state)) problems.push(`--state must be one of ${SAGA_STATES.join(', ')}`)
  const limit = values.limit === undefined ? 1000 : Number(values.limit)
  if (!(Number.isInteger(limit) && limit > 0)) problems.push('--limit must be a positive integer')
  if (command === 'inspect' && positionals.length !== 1) problems.push('inspect takes one saga id')
  if (command === 'inspect' && (values.state !== undefined || values.limit !== undefined)) problems.push('--state and --limit belong to list')
  if (problems.length > 0) {
    process.stderr.write(`weir saga ${command}: ${problems.join('; ')}\n\n${sagaUsage()}`)
    return 2
  }
  const topic = values.changelog ?? sagaChangelogTopic(values.application as string)
  try {
    const sagas = await readSagas({ brokers, ...(properties === undefined ? {} : { connection: properties.connection }), topic })
    if (command === 'inspect') {
      const id = positionals[0] as string
      const found = sagas.get(id)
      if (found === undefined) {
        process.stderr.write(`weir saga inspect: no saga ${id} in ${topic} (never started, or forgotten after its retention)\n`)
        return 1
      }
      out(values.json === true ? `${JSON.stringify(found)}\n` : `${formatSaga(found)}\n`)
      return 0
    }
    const selected = [...sagas.values()].filter((s) => state === undefined || s.status === (state as SagaStatus)).sort((a, b) => a.startedAt - b.startedAt)
    const shown = selected.slice(0, limit)
    if (values.json === true) for (const s of shown) out(`${JSON.stringify(s)}\n`)
    else {
      for (const s of shown) out(`${formatSagaLine(s)}\n`)
      const counts = SAGA_STATES.map((name) => `${[...sagas.values()].filter((s) => s.status === name).length} ${name}`).join(', ')
      out(`${shown.length} saga(s)${selected.length > shown.length ? ` of ${selected.length} (limit ${limit})` : ''}; in all ${counts}\n`)
    }
    return 0
  } catch (error) {
    const code = isWeirError(error) ? error.code : 'unexpected'
    process.stderr.write(`weir saga ${command}: failed (${code}): ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
}

if (import.meta.main) {
  sagaMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`weir saga: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
}
