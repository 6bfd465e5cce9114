// A `command` frame: checked against the catalog (path, roles, schema), made into a command envelope (and
// the deadline registration), written through the command writer, answered with `ack` or a coded error.
import type { CommandSpec } from '../commands/catalog.ts'
import { channels as coreChannels, publish } from '../core/diagnostics.ts'
import { isWeirError } from '../core/errors.ts'
import { createEnvelope, spanFrom } from '../envelope/envelope.ts'
import type { BlobRef, Envelope } from '../envelope/envelope.ts'
import { isSecurityError } from '../kafka/index.ts'
import { allowed } from './auth.ts'
import { verifyRef } from './blob-links.ts'
import type { CommandWriter } from './command-writer.ts'
import type { GatewayContext } from './context.ts'
import type { WireErrorCode } from './errors.ts'
import { commandId, commandKey } from './frames.ts'
import type { CommandFrame } from './protocol.ts'
import { send } from './sender.ts'
import type { Session } from './session.ts'
import type { Socket, SocketState } from './socket-state.ts'

export interface Commands {
  handle(ws: Socket, s: SocketState, frame: CommandFrame): void
  /** Commands being written: shutdown lets them finish (shutdownGraceMs). */
  readonly inFlight: ReadonlySet<Promise<unknown>>
}

export function createCommands(ctx: GatewayContext, session: Session): Commands {
  const { catalog, config, metrics, instanceId } = ctx
  const inFlight = new Set<Promise<unknown>>()

  function handle(ws: Socket, s: SocketState, frame: CommandFrame): void {
    const started = performance.now()
    const reject = (code: WireErrorCode, message: string, details?: Record<string, unknown>) => {
      metrics.commands.inc({ outcome: 'rejected' })
      publish(coreChannels.gatewayCommand, { instanceId, requestId: frame.requestId, path: frame.path, sessionId: s.sessionId, outcome: 'rejected', code })
      ctx.sendError(ws, s, code, message, { requestId: frame.requestId, ...(details === undefined ? {} : { details }) })
    }
    if (ctx.state !== 'running') return reject('WEIR_ERR_CLOSED', 'the gateway is shutting down; reconnect and send again')
    const spec = catalog.find(frame.path)
    if (spec === undefined) return reject('WEIR_ERR_UNKNOWN_COMMAND', `no command ${frame.path}`)
    if (!allowed(s, spec.roles)) return reject('WEIR_ERR_FORBIDDEN', `${frame.path} needs one of the roles ${(spec.roles ?? []).join(', ')}`)
    // A payload by upload is checked against the schema by the worker, which fetches it; the gateway only checks
    // that it issued the reference to this subject (blob-routes.ts).
    let payloadRef: BlobRef | undefined
    if (frame.payloadRef !== undefined) {
      try {
        payloadRef = verifyRef(config.blobs, s.subject, frame.payloadRef)
      } catch (error) {
        return reject('WEIR_ERR_BLOB_FOREIGN', (error as Error).message)
      }
    } else {
      const check = catalog.check(spec, frame.payload)
      if (!check.ok) return reject('WEIR_ERR_SCHEMA_VIOLATION', `payload of ${frame.path} violates its schema`, { violations: check.violations })
    }
    let records
    let envelope: Envelope
    try {
      ;({ envelope, records } = commandRecords(s, spec, frame, payloadRef))
    } catch (error) {
      const code = isWeirError(error) ? error.code : 'WEIR_ERR_ENVELOPE_INVALID'
      return reject(code, (error as Error).message)
    }
    // A client that sends a command without a resume first gets results from now on.
    if (s.results === 'idle') session.startResults(ws, s, [])
    const produced = (ctx.writer as CommandWriter).write(records).then(
      (written) => {
        const elapsed = performance.now() - started
        metrics.produceSeconds.observe(elapsed / 1000)
        metrics.commands.inc({ outcome: 'accepted' })
        publish(coreChannels.gatewayCommand, { instanceId, requestId: frame.requestId, path: frame.path, sessionId: s.sessionId, outcome: 'accepted', durationMs: elapsed })
        if (s.closed) return
        send(ws, s, {
          type: 'ack',
          requestId: frame.requestId,
          topic: written.topic,
          partition: written.partition,
          offset: written.offset.toString(),
          ...(envelope.deadline === undefined ? {} : { deadline: envelope.deadline }),
        })
      },
      (error: unknown) => {
        metrics.commands.inc({ outcome: 'failed' })
        const code = isWeirError(error) ? error.code : 'WEIR_ERR_KAFKA'
        publish(coreChannels.gatewayCommand, { instanceId, requestId: frame.requestId, path: frame.path, sessionId: s.sessionId, outcome: 'failed', code, error })
        if (s.closed) return
        // Safe to send again with the same requestId: the envelope id is the same, the worker dedupes it. Only a
        // refused login, certificate or ACL does not heal by sending again.
        const retriable = !isSecurityError(error)
        ctx.sendError(ws, s, code, `the command could not be written to Kafka: ${(error as Error).message}`, { requestId: frame.requestId, details: { retriable } })
      },
    )
    inFlight.add(produced)
    void produced.finally(() => inFlight.delete(produced))
  }

  function commandRecords(s: SocketState, spec: CommandSpec, frame: CommandFrame, payloadRef: BlobRef | undefined) {
    const binding = catalog.topicOf(spec)
    const ttlMs = Math.min(frame.ttlMs ?? spec.defaultTtlMs ?? config.defaultTtlMs, spec.maxTtlMs ?? config.maxTtlMs)
    const envelope = createEnvelope({
      kind: 'command',
      id: commandId(s.sessionId, frame.requestId),
      requestId: frame.requestId,
      clientSessionId: s.sessionId,
      topicAlias: spec.topicAlias,
      contextPath: spec.contextPath,
      alias: spec.alias,
      payload: payloadRef === undefined ? frame.payload : null,
      ...(payloadRef === undefined ? {} : { payloadRef }),
      ttlMs,
      // A child span of the client's traceparent when it sent a valid one, else a new trace.
      trace: spanFrom(frame.traceparent),
      // Who sent it, as the token said: the handler sees it (ownership checks) without trusting the payload.
      actor: { sub: s.subject, roles: s.roles },
    })
    const encoded = ctx.codec.encode(envelope)
    const key = commandKey(frame.payload, spec.keyField, frame.requestId)
    const records = [
      { topic: binding.commands, key, value: encoded, headers: { 'weir.subject': s.subject } },
      ...(config.deadlines === 'off' ? [] : config.deadlines(envelope, encoded, binding, key)),
    ]
    return { envelope, records }
  }

  return { handle, inFlight }
}
