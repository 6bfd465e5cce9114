// The floors of weir's source: which of weir's folders each folder may import. eslint.config.js turns this into
// `no-restricted-imports` patterns per folder, and test/scripts/folder-rules.test.ts checks docs/architecture.md's
// "Floors" table against it. A folder imports only folders below it; topology/runtime/ is part of topology/'s floor,
// but processors/ sees only the topology API, not the runtime. test/, bench/, scripts/ and examples/ may import
// anything by path. No file is exempt: an import that breaks a floor is moved, not excused.

export interface FolderRule {
  /** The folder, relative to the repository root, without a trailing slash. */
  readonly folder: string
  /** The weir folders it may import (besides its own files). */
  readonly imports: readonly string[]
}

export const WEIR_FOLDERS = ['core', 'envelope', 'commands', 'kafka', 'state', 'blobs', 'topology', 'processors', 'worker', 'gateway'] as const

export const FOLDER_RULES: readonly FolderRule[] = [
  { folder: 'core', imports: [] },
  { folder: 'envelope', imports: ['core'] },
  { folder: 'commands', imports: ['core'] },
  { folder: 'kafka', imports: ['core'] },
  { folder: 'state', imports: ['core'] },
  { folder: 'blobs', imports: ['core', 'envelope', 'kafka'] },
  { folder: 'topology', imports: ['core', 'envelope', 'kafka', 'state'] },
  { folder: 'processors', imports: ['core', 'envelope', 'commands', 'blobs', 'topology'] },
  { folder: 'processors/redis', imports: ['core', 'envelope', 'commands', 'kafka', 'topology', 'processors'] },
  { folder: 'worker', imports: ['core', 'envelope', 'commands', 'kafka', 'state', 'blobs', 'topology', 'processors'] },
  { folder: 'gateway', imports: ['core', 'envelope', 'commands', 'kafka', 'blobs'] },
]

/** Parts of an allowed folder a floor (with its subfolders) may still not import: processors/ uses the topology API, not the runtime. */
const HIDDEN: Readonly<Record<string, readonly string[]>> = { processors: ['topology/runtime'] }

/**
 * The import specifiers a folder's files may not use, as regular expressions (no-restricted-imports' `regex`): a
 * relative path that climbs out (`../`, any number) and enters a forbidden folder, so a subfolder of the importer's
 * own that happens to share a name (`./state/x.ts`) is not caught.
 */
export function forbiddenPatterns(rule: FolderRule): string[] {
  const own = rule.folder.split('/')[0]!
  const forbidden = WEIR_FOLDERS.filter((f) => f !== own && !rule.imports.includes(f))
  const hidden = HIDDEN[own] ?? []
  return [...forbidden, ...hidden].map((f) => `^(\\.\\./)+${f.replace('/', '\\/')}\\/`)
}
