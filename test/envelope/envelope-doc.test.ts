// docs/envelope.md is the contract outside writers follow: its hex example must decode to the envelope it shows.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { test } from 'node:test'

import { decodeEnvelope } from '../../envelope/codec.ts'

const DOC = resolve(import.meta.dirname, '../../docs/envelope.md')

function fencedBlock(text: string, language: string): string {
  const start = text.indexOf(`\`\`\`${language}\n`)
  assert.ok(start >= 0, `docs/envelope.md has no \`\`\`${language} block`)
  const from = start + language.length + 4
  return text.slice(from, text.indexOf('```', from))
}

test("docs/envelope.md's hex example decodes to the envelope the doc shows", () => {
  const example = readFileSync(DOC, 'utf8').split('## Example')[1]
  assert.ok(example !== undefined, 'docs/envelope.md has no Example section')
  const bytes = Buffer.from(fencedBlock(example, 'hex').replace(/\s+/g, ''), 'hex')
  const sizeClaim = /(\d+) bytes:/.exec(example)
  assert.equal(Number(sizeClaim?.[1]), bytes.length, 'the size the doc states')
  assert.deepEqual(decodeEnvelope(bytes), JSON.parse(fencedBlock(example, 'json')))
})
