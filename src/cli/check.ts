// `weft check -f FILE… [-o yaml]`: offline validation of policy files (findings with codes and
// line:column, like `istioctl analyze`); exit 1 when any file has errors. Needs no daemon.
// With -o yaml it also prints the Weft resources the files stand for — SMI and Gateway API
// resources as what they are translated into (config/translate) — on stdout, findings on stderr,
// so what the mesh will run is never a guess.
import { stringify } from 'yaml'
import { loadFile } from '../config/load.js'
import { translateForeign } from '../config/translate/index.js'
import { formatIssue, validatePolicy } from '../config/validate.js'
import { parseArgs, UsageError } from './args.js'

export function check(argv: readonly string[]): number {
  const args = parseArgs('check', argv, { file: { kind: 'list', short: 'f' }, output: { kind: 'string', short: 'o' } })
  if (args.positional.length > 0) throw new UsageError(`weft check: unexpected argument ${args.positional[0]}`)
  const files = args.lists.file!
  if (files.length === 0) throw new UsageError('weft check: needs -f FILE')
  const output = args.strings.output
  if (output !== undefined && output !== 'yaml') throw new UsageError(`weft check: -o must be yaml (got "${output}")`)
  const report = output === 'yaml' ? process.stderr : process.stdout
  let errors = 0
  const docs: string[] = []
  for (const file of files) {
    const loaded = loadFile(file)
    const policy = validatePolicy(loaded)
    for (const issue of policy.issues) report.write(formatIssue(issue) + '\n')
    const e = policy.issues.filter((i) => i.severity === 'error').length
    const w = policy.issues.length - e
    errors += e
    report.write(`${file}: ${policy.services.size} services, ${policy.routes.length} routes, ${e} errors, ${w} warnings\n`)
    if (output === 'yaml') {
      for (const r of translateForeign(loaded.resources, [])) {
        docs.push(`${r.translated ? `# from ${r.translated.label.replace(/ \(as .*\)$/, '')} in ${file}\n` : ''}${stringify(r.value)}`)
      }
    }
  }
  if (output === 'yaml' && errors === 0) process.stdout.write(docs.join('---\n'))
  return errors > 0 ? 1 : 0
}
