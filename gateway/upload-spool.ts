// The body of one upload between uWS and the blob store, in bounded memory. uWS hands the body over as fast as the
// client sends it, and the uWS build weir ships does not stop reading when a request is paused (docs/payloads.md
// has the measurement), so what the store has not taken yet must wait somewhere: up to `memoryBytes` in memory,
// the rest in a spool file (written synchronously, chunk by chunk, so no write waits in memory either), read back
// in order as the store asks for more. The file is unlinked as soon as it is opened: nothing is left on disk when
// the upload ends or the process dies.
import { closeSync, openSync, read, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'

import { WeirError } from '../core/errors.ts'

/** The store reads the spool file back in chunks of this size. */
const READ_BYTES = 256 * 1024

export interface UploadSpoolOptions {
  /** Most bytes of the body that wait in memory; beyond, chunks go to the spool file. */
  readonly memoryBytes: number
  /** Where the spool file is created (and unlinked at once). */
  readonly dir: string
  /** Told when the spool starts and stops spilling to its file (the route pauses and resumes the request). */
  readonly onSpilling?: (spilling: boolean) => void
}

export interface UploadSpool {
  /** Takes one chunk of the body; copies it (uWS reuses the buffer). Returns false once the spool failed. */
  push(chunk: ArrayBuffer, isLast: boolean): boolean
  /** Ends the body with an error (the client aborted, the token was refused). */
  fail(error: Error): void
  /** The body in order, for the store. */
  body(): AsyncIterable<Uint8Array>
  /** Most bytes that waited in memory at once. */
  readonly maxMemoryBytes: number
  /** Bytes that went through the spool file. */
  readonly spilledBytes: number
  /** Closes the spool file, if one was opened. */
  close(): void
}

function readAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, buffer.byteLength, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))))
}

export function createUploadSpool(options: UploadSpoolOptions): UploadSpool {
  const queue: Buffer[] = []
  let inMemory = 0
  let maxMemoryBytes = 0
  let spilledBytes = 0
  let fd: number | undefined
  // Bytes [readPos, writePos) of the file are waiting; while any wait (or a read is under way) new chunks go to the
  // file too, so the body stays in order.
  let writePos = 0
  let readPos = 0
  let reading = false
  let spilling = false
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const notify = () => {
    const w = wake
    wake = undefined
    w?.()
  }
  const setSpilling = (value: boolean) => {
    if (spilling === value) return
    spilling = value
    options.onSpilling?.(value)
  }

  function spill(chunk: Uint8Array): void {
    if (fd === undefined) {
      const path = join(options.dir, `weir-upload-${randomBytes(8).toString('hex')}`)
      fd = openSync(path, 'wx+', 0o600)
      unlinkSync(path)
    }
    let written = 0
    while (written < chunk.byteLength) written += writeSync(fd, chunk, written, chunk.byteLength - written, writePos + written)
    writePos += chunk.byteLength
    spilledBytes += chunk.byteLength
  }

  return {
    push(chunk, isLast) {
      if (failure !== undefined) return false
      if (isLast) ended = true
      if (chunk.byteLength > 0) {
        const fileWaiting = writePos > readPos || reading
        if (!fileWaiting && inMemory + chunk.byteLength <= options.memoryBytes) {
          queue.push(Buffer.from(chunk.slice(0)))
          inMemory += chunk.byteLength
          if (inMemory > maxMemoryBytes) maxMemoryBytes = inMemory
        } else {
          try {
            spill(new Uint8Array(chunk))
            if (!ended) setSpilling(true)
          } catch (error) {
            failure = new WeirError('WEIR_ERR_BLOB_STORE', `the upload could not be spooled to ${options.dir}: ${(error as Error).message}`, { cause: error })
          }
        }
      }
      notify()
      return failure === undefined
    },
    fail(error) {
      failure ??= error
      notify()
    },
    async *body() {
      for (;;) {
        if (failure !== undefined) throw failure
        const chunk = queue.shift()
        if (chunk !== undefined) {
          inMemory -= chunk.byteLength
          yield chunk
          continue
        }
        if (fd !== undefined && readPos < writePos) {
          const buffer = Buffer.allocUnsafe(Math.min(READ_BYTES, writePos - readPos))
          reading = true
          let bytesRead: number
          try {
            bytesRead = await readAt(fd, buffer, readPos)
          } finally {
            reading = false
          }
          if (bytesRead === 0) throw new WeirError('WEIR_ERR_BLOB_STORE', 'the upload spool file ended early')
          readPos += bytesRead
          // The file is drained: later chunks may wait in memory again, and the file is rewritten from its start.
          if (readPos === writePos) {
            readPos = 0
            writePos = 0
            setSpilling(false)
          }
          yield bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead)
          continue
        }
        if (ended) return
        await new Promise<void>((resolveWake) => (wake = resolveWake))
      }
    },
    get maxMemoryBytes() {
      return maxMemoryBytes
    },
    get spilledBytes() {
      return spilledBytes
    },
    close() {
      if (fd !== undefined) closeSync(fd)
      fd = undefined
    },
  }
}
