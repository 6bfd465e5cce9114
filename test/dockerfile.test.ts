// The image holds every file its programs and its package load: the worker (worker/cli.ts, the entry point), the
// gateway service (gateway/main.ts, run with --entrypoint) and the package's exports (a mounted topology imports
// them). The Dockerfile copies folder by folder and is not built on the development machines, so a folder missing
// from it would show only when a team runs the image.
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'
import { test } from 'node:test'

const ROOT = resolve(import.meta.dirname, '..')

/** The repository files a program loads: its relative imports (static and dynamic), followed transitively. */
function loadedFiles(entry: string): Set<string> {
  const seen = new Set<string>()
  const visit = (path: string): void => {
    if (seen.has(path)) return
    seen.add(path)
    const text = readFileSync(path, 'utf8')
    for (const match of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+\.ts)'/g)) {
      const target = resolve(dirname(path), match[1]!)
      if (existsSync(target)) visit(target)
    }
  }
  visit(resolve(ROOT, entry))
  return new Set([...seen].map((p) => relative(ROOT, p)))
}

/** The top-level folders and files the runtime stage copies from the build context. */
function copied(): Set<string> {
  const dockerfile = readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8')
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
  const sources = new Set<string>()
  for (const line of runtime.split('\n')) {
    const words = line.trim().split(/\s+/)
    if (words[0] !== 'COPY' || words.some((w) => w.startsWith('--from'))) continue
    for (const source of words.slice(1, -1)) sources.add(source.replace(/\/$/, ''))
  }
  return sources
}

test('the runtime image copies every folder and file the worker, the gateway service and the package exports load', () => {
  const { exports } = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string> }
  const entries = ['worker/cli.ts', 'gateway/main.ts', ...Object.values(exports).map((p) => p.replace(/^\.\//, ''))]
  const image = copied()
  const missing = new Map<string, string>()
  for (const entry of entries) {
    for (const file of loadedFiles(entry)) {
      const top = file.split('/')[0]!
      if (!image.has(top) && !missing.has(top)) missing.set(top, `${top} (${entry} loads ${file})`)
    }
  }
  assert.deepEqual([...missing.values()], [], 'add these to the Dockerfile runtime stage')
})
