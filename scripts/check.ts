// Static checks: TypeScript type check, ESLint (including the native-addon import rules), no import cycles.
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'

import { findImportCycles } from './lib/import-cycles.ts'
import { createProgress } from './infra/progress.ts'

const ROOT = resolve(import.meta.dirname, '..')

export function runChecks(progress = createProgress('check')): boolean {
  const steps: Array<[string, () => boolean]> = [
    ['type check (tsc --noEmit)', () => runTool(['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'])],
    ['lint (eslint)', () => runTool(['node_modules/eslint/bin/eslint.js', '--max-warnings=0', '.'])],
    [
      'import cycles',
      () => {
        const cycles = findImportCycles(ROOT)
        for (const cycle of cycles) process.stderr.write(`import cycle: ${cycle.join(' -> ')}\n`)
        return cycles.length === 0
      },
    ],
  ]
  for (const [name, step] of steps) {
    progress.step(name)
    if (!step()) {
      progress.step(`✘ ${name} failed`)
      return false
    }
  }
  progress.done('static checks passed')
  return true
}

function runTool(args: string[]): boolean {
  const result = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' })
  return result.status === 0
}

if (import.meta.main) process.exit(runChecks() ? 0 : 1)
