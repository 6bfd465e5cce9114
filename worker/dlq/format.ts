// How `weir dlq inspect` prints a dead letter: one JSON document (--json), or a block of text.
import type { DeadLetter } from './letter.ts'

const show = (bytes: Buffer | undefined) => {
  if (bytes === undefined) return 'null'
  const text = bytes.toString('utf8')
  // Bytes that are not valid UTF-8, or hold control characters other than whitespace, print as base64.
  const printable = !text.includes('\uFFFD') && ![...text].some((c) => c.charCodeAt(0) < 0x20 && !'\t\n\r'.includes(c))
  return printable ? JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text) : `<${bytes.length} bytes, base64 ${bytes.toString('base64').slice(0, 80)}>`
}

export function deadLetterJson(letter: DeadLetter): Record<string, unknown> {
  const { record } = letter
  return {
    topic: record.topic,
    partition: record.partition,
    offset: String(record.offset),
    timestamp: String(record.timestamp),
    code: letter.code ?? null,
    message: letter.message ?? null,
    origin: {
      topic: letter.origin.topic ?? null,
      partition: letter.origin.partition ?? null,
      offset: letter.origin.offset === undefined ? null : String(letter.origin.offset),
      timestamp: letter.origin.timestamp === undefined ? null : String(letter.origin.timestamp),
    },
    attempts: letter.attempts ?? null,
    processor: letter.processor ?? null,
    truncated: letter.truncated,
    keySize: letter.keySize ?? null,
    valueSize: letter.valueSize ?? null,
    valueSha256: letter.valueSha256 ?? null,
    headers: Object.fromEntries(Object.entries(letter.originalHeaders).map(([k, v]) => [k, v.toString('utf8')])),
    key: record.key === undefined ? null : record.key.toString('base64'),
    value: record.value === undefined ? null : record.value.toString('base64'),
  }
}

export function formatDeadLetter(letter: DeadLetter): string {
  const { record, origin } = letter
  const when = (ms: bigint | undefined) => (ms === undefined ? '?' : new Date(Number(ms)).toISOString())
  return [
    `${record.topic}/${record.partition}@${record.offset}  ${when(record.timestamp)}  ${letter.code ?? '(no weir.error.code)'}`,
    `  message:   ${letter.message ?? ''}`,
    `  origin:    ${origin.topic ?? '?'}/${origin.partition ?? '?'}@${origin.offset ?? '?'} at ${when(origin.timestamp)}`,
    `  processor: ${letter.processor ?? '?'}  attempts: ${letter.attempts ?? '?'}`,
    ...(letter.truncated.length === 0
      ? []
      : [`  TRUNCATED: ${letter.truncated.join(', ')} cut to fit the topic; value ${record.value?.byteLength ?? 0} of ${letter.valueSize ?? '?'} bytes kept (cannot be re-injected)`]),
    ...(letter.valueSha256 === undefined ? [] : [`  original:  value ${letter.valueSize ?? '?'} bytes, sha256 ${letter.valueSha256}, key ${letter.keySize ?? '?'} bytes`]),
    `  key:       ${show(record.key)}`,
    `  value:     ${show(record.value)}`,
    ...Object.entries(letter.originalHeaders).map(([name, value]) => `  header:    ${name}=${show(value)}`),
  ].join('\n')
}
