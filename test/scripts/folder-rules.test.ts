// The floors are one list (scripts/lib/folder-rules.ts): ESLint enforces it, docs/architecture.md's "Floors" table
// says the same.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { test } from 'node:test'

import { ESLint } from 'eslint'

import { FOLDER_RULES } from '../../scripts/lib/folder-rules.ts'

const ROOT = resolve(import.meta.dirname, '../..')

function floorsTable(): Map<string, string[]> {
  const doc = readFileSync(resolve(ROOT, 'docs/architecture.md'), 'utf8')
  const section = doc.slice(doc.indexOf('### Floors'))
  const rows = new Map<string, string[]>()
  for (const line of section.split('\n').slice(1)) {
    if (rows.size > 0 && !line.startsWith('|')) break
    const cells = line.split('|').map((c) => c.trim())
    const folder = /^`([a-z/]+)\/`$/.exec(cells[1] ?? '')?.[1]
    if (folder === undefined) continue
    // The folders named before any parenthesis (which explains, and may name a folder that is not allowed).
    const allowed = (cells[2] ?? '').replace(/\(.*\)/, '')
    rows.set(folder, [...allowed.matchAll(/`([a-z/]+)\/`/g)].map((m) => m[1]!))
  }
  return rows
}

test("docs/architecture.md's Floors table lists every folder rule with exactly its allowed folders", () => {
  const table = floorsTable()
  assert.deepEqual(
    [...table.entries()].sort(),
    FOLDER_RULES.map((r) => [r.folder, [...r.imports]] as const).sort(),
  )
})

test('ESLint fails an import that runs up the floors, and passes one that follows them', async () => {
  const eslint = new ESLint({ cwd: ROOT })
  const lint = async (file: string, code: string) => (await eslint.lintText(code, { filePath: resolve(ROOT, file) }))[0]!.messages.map((m) => m.ruleId)
  assert.deepEqual(await lint('core/violation.ts', "import { encodeEnvelope } from '../envelope/codec.ts'\nexport const x = encodeEnvelope\n"), ['no-restricted-imports'])
  assert.deepEqual(await lint('processors/violation.ts', "import { createTask } from '../topology/runtime/task.ts'\nexport const x = createTask\n"), ['no-restricted-imports'])
  assert.deepEqual(await lint('gateway/violation.ts', "import { openStore } from '../state/open-store.ts'\nexport const x = openStore\n"), ['no-restricted-imports'])
  assert.deepEqual(await lint('processors/fine.ts', "import { defineTopology } from '../topology/define.ts'\nexport const x = defineTopology\n"), [])
})
