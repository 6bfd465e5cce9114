// The first word of a `weir` command line: its subcommand. No word or a help word prints the usage (exit 2 without
// a word, 0 when help was asked for); an unknown word is refused with the usage (exit 2).

/** The subcommand and its arguments, or the exit code when there is none to run. */
export function subcommand<C extends string>(tool: string, argv: readonly string[], commands: readonly C[], usage: () => string): { command: C; rest: string[] } | number {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage())
    return command === undefined ? 2 : 0
  }
  if (!(commands as readonly string[]).includes(command)) {
    process.stderr.write(`${tool}: unknown command ${command}\n\n${usage()}`)
    return 2
  }
  return { command: command as C, rest }
}
