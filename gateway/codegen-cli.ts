// `weir codegen --catalog <module.ts|catalog.json> [--out file.ts] [--client-import weir/client]`: writes the typed
// command functions of a command catalog (gateway/codegen.ts) to a file, or to stdout without --out.
// Exit codes: 0 written, 2 bad arguments or catalog.
import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'

import { isWeirError } from '../core/errors.ts'
import { generateCommandModule } from './codegen.ts'
import { loadCatalog } from './config.ts'

const USAGE = 'Usage: weir codegen --catalog <module.ts|catalog.json> [--out <file.ts>] [--client-import <specifier>] (default weir/client)\n'

async function main(argv: string[]): Promise<number> {
  let values: { catalog?: string; out?: string; 'client-import'?: string; help?: boolean }
  try {
    values = parseArgs({ args: argv, strict: true, options: { catalog: { type: 'string' }, out: { type: 'string' }, 'client-import': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values
  } catch (error) {
    process.stderr.write(`weir codegen: ${(error as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(USAGE)
    return 0
  }
  if (values.catalog === undefined) {
    process.stderr.write(`weir codegen: --catalog is required\n\n${USAGE}`)
    return 2
  }
  try {
    const catalog = await loadCatalog(values.catalog)
    const source = generateCommandModule(catalog, { clientImport: values['client-import'] ?? 'weir/client' })
    if (values.out === undefined) process.stdout.write(source)
    else {
      await writeFile(values.out, source)
      process.stderr.write(`weir codegen: wrote ${values.out}\n`)
    }
    return 0
  } catch (error) {
    process.stderr.write(`weir codegen: ${isWeirError(error) ? `${error.code}: ` : ''}${(error as Error).message}\n`)
    return 2
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code))
