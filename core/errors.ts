// Every error weir throws or reports is a WeirError with a stable code from `errorCodes`.
// docs/errors.md lists the same codes; test/core/errors.test.ts fails when the two drift apart.

export const errorCodes = {
  WEIR_ERR_INVALID_OPTIONS: 'Options failed validation; `violations` lists every problem found.',
  WEIR_ERR_SECRET_ON_COMMAND_LINE: 'A service was given a secret as a command-line value, which every local user can read; pass it in its environment variable or a file. `violations` lists every configuration problem.',
  WEIR_ERR_ENVELOPE_DECODE: 'The bytes are not a msgpack document (empty, truncated or corrupt); `raw` keeps them.',
  WEIR_ERR_ENVELOPE_INVALID: 'The document decoded but is not a valid envelope; `violations` says why and `raw` keeps the bytes.',
  WEIR_ERR_ENVELOPE_VERSION: 'The envelope was written with a schema version this build does not read; `raw` keeps the bytes.',
  WEIR_ERR_ENVELOPE_TOO_LARGE: 'An envelope is larger than the configured size limit (on encode, or on decode with `raw` kept).',
  WEIR_ERR_TOPOLOGY_INVALID: 'A topology description failed validation; `violations` lists every problem found.',
  WEIR_ERR_NOT_COPARTITIONED: 'Source topics of one topology have different partition counts, so their partitions cannot share tasks.',
  WEIR_ERR_DESERIALIZATION: 'A record key or value could not be deserialized by its serde; the record goes to the dead-letter topic.',
  WEIR_ERR_PROCESSING: 'A processor threw while handling a record or timer; `cause` holds what it threw.',
  WEIR_ERR_STATE_STORE: 'A state store operation failed (open, read, write, restore).',
  WEIR_ERR_UNKNOWN_COMMAND: 'No handler is registered for the command path (topic alias, context path, alias).',
  WEIR_ERR_SCHEMA_VIOLATION: 'A command payload does not match its schema; `violations` lists every problem.',
  WEIR_ERR_COMMAND_EXPIRED: 'A command reached its handler after its deadline and was not executed.',
  WEIR_ERR_NON_RETRIABLE: 'A handler failed in a way retrying cannot fix; the command gets an error result and a dead letter.',
  WEIR_ERR_RETRIES_EXHAUSTED: 'A handler kept failing until its retry budget (attempts or time) ran out.',
  WEIR_ERR_DEADLINE_EXCEEDED: 'No result arrived before the command deadline: the request\'s outcome is this timeout.',
  WEIR_ERR_SAGA_UNKNOWN: 'A saga reply (a result or event of a step) names a saga id the saga has no state for: never started, or its state expired after retentionMs.',
  WEIR_ERR_SAGA_START_INVALID: 'A message that starts a saga yields no saga id (the definition\'s sagaId returned nothing usable).',
  WEIR_ERR_KAFKA: 'The Kafka client reported an error; `cause` holds the client error.',
  WEIR_ERR_KAFKA_TRANSACTION: 'A Kafka transaction could not be committed and was aborted; nothing it wrote is visible.',
  WEIR_ERR_KAFKA_FENCED: 'This producer was fenced by a newer instance with the same transactional id (a zombie).',
  WEIR_ERR_POISON_RECORD: 'A record made its task fail maxTaskFailures times in a row (the broker refused its transaction); the error policy was applied to it instead of processing it.',
  WEIR_ERR_TASK_STOPPED: 'A task kept failing at the same offsets (after the error policy, or with the fail policy) and was stopped; its partition is not processed until the worker restarts.',
  WEIR_ERR_DEAD_LETTER_TRUNCATED: 'A dead letter was cut to fit its topic (weir.truncated): it cannot be re-injected as it is.',
  WEIR_ERR_KAFKA_AUTHENTICATION: 'The broker refused the SASL credentials (wrong password, unknown user, or a mechanism it does not enable); never retried.',
  WEIR_ERR_KAFKA_TLS: 'TLS to the broker failed (its certificate is not signed by the configured CA, its name does not match, or the listener has no TLS); never retried.',
  WEIR_ERR_KAFKA_AUTHORIZATION: 'The broker refused an operation for lack of an ACL; `details` names the resource type, resource and operation.',
  WEIR_ERR_INVALID_ARGUMENT: 'A call received an argument it cannot use (wrong type, empty key, inverted range).',
  WEIR_ERR_CLOSED: 'The component was used while it is not open (before open() or after close()).',
  WEIR_ERR_TIMEOUT: 'A bounded wait ran out of time before its condition held.',
  WEIR_ERR_REDIS: 'A Redis command failed (the Redis poller baseline and the importer); `cause` holds the client error.',
  WEIR_ERR_SHUTDOWN_INCOMPLETE: 'A worker stopped with work not committed (its shutdown deadline passed, or a final commit failed); `uncommitted` names the tasks, whose next owner redoes it.',
  WEIR_ERR_FAULT_RULE_INVALID: 'A fault rule or fault control record is malformed (not JSON, unknown op or field, bad kind, probability or delay); `violations` lists every problem. It is skipped; the rules in force stay as they were.',
  WEIR_ERR_FAULT_INJECTED: 'A retriable error injected by a fault rule (docs/faults.md); the command router retries it like any handler error.',
  // Large payloads (claim check, docs/payloads.md).
  WEIR_ERR_BLOB_MISSING: 'An envelope references a blob its store does not hold (collected, never written, or the wrong store); the record goes to the dead-letter path with its reference.',
  WEIR_ERR_BLOB_INTEGRITY: 'A blob\'s bytes do not match the SHA-256 or size of the reference that names it (tampered or corrupt); the payload is refused.',
  WEIR_ERR_BLOB_FOREIGN: 'A blob reference names a store this reader does not have, is malformed, or (at the gateway) carries no valid signature of this gateway.',
  WEIR_ERR_BLOB_TOO_LARGE: 'A payload upload is larger than the configured limit (maxUploadBytes).',
  WEIR_ERR_BLOB_STORE: 'The blob store failed (I/O, network, the S3 server); `cause` holds the error. Retriable.',
  // Gateway protocol (socket frames, authentication). The client SDK rejects with these too.
  WEIR_ERR_FRAME_MALFORMED: 'A socket frame is not a JSON (text) or msgpack (binary) document holding one object.',
  WEIR_ERR_FRAME_INVALID: 'A socket frame decoded but is not a valid frame (unknown type, missing or invalid fields); `violations` says why.',
  WEIR_ERR_FRAME_TOO_LARGE: 'A socket frame is larger than the gateway accepts (maxFrameBytes).',
  WEIR_ERR_RATE_LIMITED: 'The connection sent frames faster than its rate limit; the frame was dropped (`retryAfterMs` says when to retry).',
  WEIR_ERR_UNAUTHENTICATED: 'No token, or a token that failed verification (signature, algorithm, issuer, audience, claims).',
  WEIR_ERR_TOKEN_EXPIRED: 'The token expired (at upgrade, or on an open connection that did not refresh it in time).',
  WEIR_ERR_FORBIDDEN: 'The authenticated subject may not do this (a role the command needs, an event stream its rule refuses, or a token refresh for another subject).',
  WEIR_ERR_UNKNOWN_TOPIC: 'A subscribe, unsubscribe or resume names a topic alias or Kafka topic the gateway does not serve.',
  WEIR_ERR_HANDSHAKE_INVALID: 'The WebSocket upgrade request is malformed (not a WebSocket upgrade, a bad sealing key, session nonce, encoding, subprotocol or WebSocket version); `details.violations` lists every problem.',
  WEIR_ERR_DECRYPT: 'An encrypted result could not be decrypted with the session key (wrong key or tampered frame).',
  WEIR_ERR_CALLBACK: 'A callback the application gave the client SDK (onAck, onResult, onGap, onStateChange, an event handler) threw; `cause` holds what it threw.',
} as const

export type ErrorCode = keyof typeof errorCodes

export interface WeirErrorOptions {
  cause?: unknown
  details?: Readonly<Record<string, unknown>>
}

export class WeirError extends Error {
  readonly code: ErrorCode
  readonly details: Readonly<Record<string, unknown>>

  constructor(code: ErrorCode, message?: string, options: WeirErrorOptions = {}) {
    super(message ?? errorCodes[code], options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'WeirError'
    this.code = code
    this.details = Object.freeze({ ...options.details })
  }

  // Loggers (pino) serialize enumerable properties; message and cause are not enumerable on Error.
  toJSON(): Record<string, unknown> {
    const cause = this.cause
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      details: this.details,
      ...(cause === undefined ? {} : { cause: cause instanceof Error ? { name: cause.name, message: cause.message } : cause }),
    }
  }
}

/** A decoding failure that keeps the raw bytes so the record can go to a dead-letter topic unchanged. */
export class EnvelopeError extends WeirError {
  readonly raw: Uint8Array

  constructor(
    code: 'WEIR_ERR_ENVELOPE_DECODE' | 'WEIR_ERR_ENVELOPE_INVALID' | 'WEIR_ERR_ENVELOPE_VERSION' | 'WEIR_ERR_ENVELOPE_TOO_LARGE',
    raw: Uint8Array,
    message?: string,
    options: WeirErrorOptions = {},
  ) {
    super(code, message, options)
    this.name = 'EnvelopeError'
    this.raw = raw
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), rawLength: this.raw.byteLength }
  }
}

export function isWeirError(error: unknown, code?: ErrorCode): error is WeirError {
  return error instanceof WeirError && (code === undefined || error.code === code)
}

/** Collects every violation of an options object, then throws one coded error listing all of them. */
export function invalidOptions(component: string, violations: readonly string[]): WeirError {
  return new WeirError('WEIR_ERR_INVALID_OPTIONS', `${component}: invalid options: ${violations.join('; ')}`, {
    details: { component, violations: [...violations] },
  })
}
