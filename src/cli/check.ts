// `weft check -f FILE…`: offline validation of policy files (findings with codes and line:column,
// like `istioctl analyze`); exit 1 when any file has errors. Needs no daemon.
import { loadFile } from '../config/load.js'
import { formatIssue, validatePolicy } from '../config/validate.js'
import { parseArgs, UsageError } from './args.js'

export function check(argv: readonly string[]): number {
  const args = parseArgs('check', argv, { file: { kind: 'list', short: 'f' } })
  if (args.positional.length > 0) throw new UsageError(`weft check: unexpected argument ${args.positional[0]}`)
  const files = args.lists.file!
  if (files.length === 0) throw new UsageError('weft check: needs -f FILE')
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
