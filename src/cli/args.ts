// Flag parsing for the `weft` commands: a small table per command instead of a framework.
// "--name value", "--name=value", "-n value", repeatable list flags and booleans; anything not
// in the table is a usage error (exit 2) with the command's name.

export type FlagKind = 'string' | 'boolean' | 'list'

export interface FlagDef {
  kind: FlagKind
  /** One-letter alias, without the dash ("f" for -f). */
  short?: string
}

export type FlagTable = Record<string, FlagDef>

export interface ParsedArgs {
  strings: Record<string, string | undefined>
  lists: Record<string, string[]>
  booleans: Record<string, boolean>
  positional: string[]
}

/** A mistake in how the command was called: printed with a hint, exit status 2. */
export class UsageError extends Error {}

/** A failure to report in one line (or a few), exit status 1. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message)
  }
}

/** The flags every command that talks to the daemon accepts. */
export const CONNECTION_FLAGS: FlagTable = {
  control: { kind: 'string' },
  token: { kind: 'string' },
  'data-dir': { kind: 'string' },
}

export function parseArgs(command: string, argv: readonly string[], table: FlagTable): ParsedArgs {
  const out: ParsedArgs = { strings: {}, lists: {}, booleans: {}, positional: [] }
  const byShort = new Map<string, string>()
  for (const [name, def] of Object.entries(table)) {
    if (def.kind === 'list') out.lists[name] = []
    if (def.kind === 'boolean') out.booleans[name] = false
    if (def.short) byShort.set(def.short, name)
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      out.positional.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      out.positional.push(arg)
      continue
    }
    let name: string | undefined
    let inline: string | undefined
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
      inline = eq < 0 ? undefined : arg.slice(eq + 1)
    } else {
      name = byShort.get(arg[1]!)
      if (arg.length > 2) inline = arg.slice(2)
    }
    const def = name === undefined ? undefined : table[name]
    if (!def || name === undefined) throw new UsageError(`weft ${command}: unknown flag ${arg}`)
    if (def.kind === 'boolean') {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') throw new UsageError(`weft ${command}: --${name} takes no value`)
      out.booleans[name] = inline !== 'false'
      continue
    }
    let value = inline
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`weft ${command}: ${arg} needs a value`)
      value = argv[++i]!
    }
    if (def.kind === 'list') out.lists[name]!.push(value)
    else out.strings[name] = value
  }
  return out
}

/** The output format flag (-o table|json|yaml), checked. */
export function outputFormat(command: string, args: ParsedArgs): 'table' | 'json' | 'yaml' {
  const o = args.strings.output ?? 'table'
  if (o === 'table' || o === 'json' || o === 'yaml') return o
  throw new UsageError(`weft ${command}: -o must be table, json or yaml (got "${o}")`)
}

export const OUTPUT_FLAG: FlagTable = { output: { kind: 'string', short: 'o' } }
