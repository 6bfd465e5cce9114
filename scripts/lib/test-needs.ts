// Which infrastructure a test file needs (a Kafka broker, Redis, an S3-compatible server, Python's msgpack, Chromium), so that
// `npm run test:unit` runs the files that need none without starting anything, and `npm test -- <files>`
// starts only what those files need. test/needs.ts declares each file's needs; test/scripts/test-needs.test.ts
// checks that every test file is declared and that no file reaches a variable of a need it does not declare.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

export const NEEDS = ['kafka', 'redis', 's3', 'python', 'chromium'] as const
export type Need = (typeof NEEDS)[number]

/** The environment variables (set by scripts/test.ts) whose reading shows each need: `process.env.NAME`. */
const SIGNS: Record<Need, RegExp> = {
  kafka: /process\.env\.(?:KAFKA_BOOTSTRAP_SERVERS|KAFKA_SECURE_BOOTSTRAP_SERVERS|WEIR_SECURE_KAFKA_DIR)\b/,
  redis: /process\.env\.REDIS_URL\b/,
  s3: /process\.env\.WEIR_S3_ENDPOINT\b/,
  python: /process\.env\.WEIR_PYTHON\b/,
  chromium: /process\.env\.WEIR_CHROMIUM\b/,
}

const ROOT = resolve(import.meta.dirname, '../..')

/** Every test file, relative to the repository root, sorted. */
export function testFiles(root = ROOT): string[] {
  const found: string[] = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.test.ts')) found.push(path)
    }
  }
  walk('test')
  return found.sort()
}

/**
 * The needs a test file shows: a read of the variables above in the file or in the test helpers it imports (relative imports
 * under test/, followed transitively; library code is not followed, since reading a variable there needs nothing).
 */
export function inferNeeds(file: string, root = ROOT): Need[] {
  const seen = new Set<string>()
  const found = new Set<Need>()
  const visit = (path: string): void => {
    if (seen.has(path)) return
    seen.add(path)
    const text = readFileSync(path, 'utf8')
    for (const need of NEEDS) if (SIGNS[need].test(text)) found.add(need)
    for (const match of text.matchAll(/(?:from|import\()\s*'(\.[^']+\.ts)'/g)) {
      const target = resolve(dirname(path), match[1]!)
      // Outside test/, or a path inside a string (generated code a test writes), is not followed.
      if (relative(join(root, 'test'), target).startsWith('..') || !existsSync(target)) continue
      visit(target)
    }
  }
  visit(join(root, file))
  return NEEDS.filter((n) => found.has(n))
}

export interface TestSelection {
  /** The files to run (paths relative to the repository root). */
  readonly files: string[]
  /** What they need, in NEEDS order. */
  readonly needs: Need[]
}

/**
 * The files and needs of the test runner's arguments: none is every file and every need (`npm test`); `--unit` is the
 * files that need nothing; otherwise files and folders (a folder is every test file under it). A file missing from
 * the declarations counts as needing everything.
 */
export function selectTests(args: readonly string[], declared: Readonly<Record<string, readonly Need[]>>, root = ROOT): TestSelection {
  const all = testFiles(root)
  if (args.length === 0) return { files: all, needs: [...NEEDS] }
  const files =
    args.length === 1 && args[0] === '--unit'
      ? all.filter((f) => declared[f]?.length === 0)
      : [
          ...new Set(
            args.flatMap((arg) => {
              const path = relative(root, resolve(arg))
              if (path.endsWith('.ts')) return [path]
              const folder = path.replace(/\/$/, '')
              return all.filter((f) => f.startsWith(`${folder}/`))
            }),
          ),
        ]
  const needs = new Set<Need>()
  for (const file of files) for (const need of declared[file] ?? NEEDS) needs.add(need)
  return { files, needs: NEEDS.filter((n) => needs.has(n)) }
}
