// docs/protocol.md is the contract outside clients are written from: its frame tables list exactly the frame
// types of gateway/frame-types.ts, each in the table of its direction.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { CLIENT_FRAME_TYPES, SERVER_FRAME_TYPES } from '../../gateway/frame-types.ts'

const docs = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8')

/** The frame types named in the first column of the table under a `### heading`. */
function documentedTypes(heading: string): string[] {
  const start = docs.indexOf(`\n### ${heading}\n`)
  assert.ok(start >= 0, `docs/protocol.md has a "### ${heading}" section`)
  const rest = docs.slice(start + heading.length + 6)
  const end = rest.search(/\n#{1,3} /)
  const section = end === -1 ? rest : rest.slice(0, end)
  return [...section.matchAll(/^\| `([a-z]+)` \|/gm)].map((m) => m[1] as string)
}

function assertSameTypes(listed: readonly string[], documented: readonly string[], table: string): void {
  assert.deepEqual(
    listed.filter((t) => !documented.includes(t)),
    [],
    `frame types missing from docs/protocol.md "${table}"`,
  )
  assert.deepEqual(
    documented.filter((t) => !listed.includes(t)),
    [],
    `frame types in docs/protocol.md "${table}" that gateway/frame-types.ts lacks`,
  )
  assert.equal(new Set(documented).size, documented.length, `a frame type is listed twice in "${table}"`)
}

test('docs/protocol.md lists exactly the client frame types', () => {
  assertSameTypes(CLIENT_FRAME_TYPES, documentedTypes('Client → server'), 'Client → server')
})

test('docs/protocol.md lists exactly the server frame types', () => {
  assertSameTypes(SERVER_FRAME_TYPES, documentedTypes('Server → client'), 'Server → client')
})
