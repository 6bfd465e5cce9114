// Finds cycles among the project's relative .ts imports (no dependency needed for this small job).
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const IGNORED = new Set(['node_modules', '.git', '.weir', 'docs'])
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+\.ts)['"]|import\(\s*['"](\.{1,2}\/[^'"]+\.ts)['"]\s*\)/g

function listSources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (IGNORED.has(name)) continue
    const path = join(dir, name)
    if (statSync(path).isDirectory()) listSources(path, out)
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

export function findImportCycles(root: string): string[][] {
  const graph = new Map<string, string[]>()
  for (const file of listSources(root)) {
    const text = readFileSync(file, 'utf8')
    const deps: string[] = []
    for (const match of text.matchAll(IMPORT)) {
      // `import type` edges vanish at run time, but a type-only cycle is still a design smell: keep them.
      const spec = match[1] ?? match[2]
      if (spec !== undefined) deps.push(resolve(dirname(file), spec))
    }
    graph.set(file, deps)
  }
  const cycles: string[][] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const stack: string[] = []
  const visit = (node: string) => {
    state.set(node, 'visiting')
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue
      if (state.get(next) === 'visiting') cycles.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative(root, f)))
      else if (state.get(next) === undefined) visit(next)
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node)
  return cycles
}
