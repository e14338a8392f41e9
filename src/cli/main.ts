#!/usr/bin/env node
// The `weft` command. This version has the offline commands: `weft check -f FILE` validates a
// policy file (findings with codes and line:column, like `istioctl analyze`) and exits 1 on errors.
import { loadFile } from '../config/load.js'
import { formatIssue, validatePolicy } from '../config/validate.js'

const USAGE = `usage: weft <command>

commands:
  check -f FILE [-f FILE…]   validate policy files offline; exit 1 when any has errors
  version                    print the version
  help                       this text`

function check(args: string[]): number {
  const files: string[] = []
  for (let i = 0; i < args.length; i++) {
    if ((args[i] === '-f' || args[i] === '--file') && args[i + 1]) files.push(args[++i]!)
    else {
      process.stderr.write(`weft check: unexpected argument ${args[i]}\n${USAGE}\n`)
      return 2
    }
  }
  if (files.length === 0) {
    process.stderr.write(`weft check: needs -f FILE\n`)
    return 2
  }
  let errors = 0
  for (const file of files) {
    const policy = validatePolicy(loadFile(file))
    for (const issue of policy.issues) process.stdout.write(formatIssue(issue) + '\n')
    const e = policy.issues.filter((i) => i.severity === 'error').length
    const w = policy.issues.length - e
    errors += e
    process.stdout.write(`${file}: ${policy.services.size} services, ${policy.routes.length} routes, ${e} errors, ${w} warnings\n`)
  }
  return errors > 0 ? 1 : 0
}

function main(argv: string[]): number {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'check':
      return check(rest)
    case 'version':
    case '--version':
      process.stdout.write('weft 0.1.0\n')
      return 0
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE + '\n')
      return 0
    default:
      process.stderr.write(`weft: unknown command "${cmd}"\n${USAGE}\n`)
      return 2
  }
}

process.exitCode = main(process.argv.slice(2))
