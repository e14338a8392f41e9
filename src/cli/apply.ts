// `weft apply -f FILE… [--dry-run]`: validates the files locally first (line:column, like `weft
// check`), then sends them to the daemon in ONE body (POST /v1/policy), which upserts each resource
// and validates the merged policy: all the files are stored as one version, or none of them; prints
// what changed per resource and the new version.
import { readFileSync } from 'node:fs'
import { loadText } from '../config/load.js'
import type { ConfigIssue } from '../config/types.js'
import { formatIssue, validatePolicy } from '../config/validate.js'
import { CliError, CONNECTION_FLAGS, parseArgs, UsageError } from './args.js'
import { DaemonError, describeDaemonError, withClient, type Connection } from './client.js'

export interface Change {
  kind: string
  namespace: string
  name: string
  action: 'created' | 'updated' | 'unchanged' | string
}

interface ApplyAnswer {
  version: number
  changes: Change[]
  warnings?: unknown[]
}

/**
 * Findings the file alone cannot judge: a Route may name a Service that is already in the
 * daemon's policy or only in its registry. The daemon checks those against the merged policy.
 */
const NEEDS_MERGED_VIEW = new Set(['WEFT_E_REF_UNKNOWN', 'WEFT_W_SUBSET_EMPTY'])

export async function apply(argv: readonly string[]): Promise<number> {
  const args = parseArgs('apply', argv, { ...CONNECTION_FLAGS, file: { kind: 'list', short: 'f' }, 'dry-run': { kind: 'boolean' } })
  if (args.positional.length > 0) throw new UsageError(`weft apply: unexpected argument ${args.positional[0]}`)
  const files = args.lists.file!
  if (files.length === 0) throw new UsageError('weft apply: needs -f FILE (or -f - for stdin)')
  const dryRun = args.booleans['dry-run']!

  // Every file is checked before anything is sent: a bad second file stores nothing of the first.
  const bodies: { file: string; text: string }[] = []
  let errors = 0
  for (const file of files) {
    const text = readSource(file)
    const label = file === '-' ? '<stdin>' : file
    const loaded = loadText(text, label)
    const issues = validatePolicy(loaded).issues.filter((i) => i.severity === 'error' && !NEEDS_MERGED_VIEW.has(i.code))
    for (const i of issues) process.stderr.write(formatIssue(i) + '\n')
    errors += issues.length
    if (issues.length === 0 && loaded.resources.length === 0) throw new CliError(`weft apply: ${label} has no resources`)
    bodies.push({ file: label, text })
  }
  if (errors > 0) throw new CliError(`weft apply: ${errors} error${errors === 1 ? '' : 's'}; nothing was sent to the daemon`)

  // One body for all files: the daemon stores all of it or nothing (see combine()).
  const body = combine(bodies)
  const label = bodies.map((b) => b.file).join(', ')
  return withClient(args, async (client) => {
    let answer: ApplyAnswer
    try {
      answer = await client.call<ApplyAnswer>('POST', `/v1/policy${dryRun ? '?dryRun=true' : ''}`, { body: body.text, contentType: 'application/yaml' })
    } catch (err) {
      if (err instanceof DaemonError) throw new CliError(describeRefusal(err, client.conn, body).join('\n'))
      throw err
    }
    for (const w of answer.warnings ?? []) process.stderr.write(formatWarning(w, body) + '\n')
    process.stdout.write(describeChanges(answer.changes, dryRun))
    const changed = answer.changes.some((c) => c.action !== 'unchanged')
    if (dryRun) process.stdout.write(`dry run: nothing was stored (${label})\n`)
    else if (changed) process.stdout.write(`applied ${label}: version ${answer.version}\n`)
    else process.stdout.write(`unchanged ${label}: version stays ${answer.version}\n`)
    return 0
  })
}

/** Several files as one YAML stream, and where each starts, to map the daemon's lines back. */
interface Combined {
  text: string
  files: { file: string; firstLine: number }[]
}

/**
 * Joins the files with "..." (end of document): after it a new document starts whether the next
 * file opens with "---", a %YAML directive or neither, and no file's last document runs on.
 */
function combine(bodies: readonly { file: string; text: string }[]): Combined {
  let text = ''
  let line = 1
  const files: Combined['files'] = []
  for (const [i, b] of bodies.entries()) {
    if (i > 0) {
      const sep = (text.endsWith('\n') ? '' : '\n') + '...\n'
      text += sep
      line += countLines(sep)
    }
    files.push({ file: b.file, firstLine: line })
    text += b.text
    line += countLines(b.text)
  }
  return { text, files }
}

function countLines(s: string): number {
  let n = 0
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++
  return n
}

/** An issue located in the combined body, located in its file instead. */
function locate(issue: ConfigIssue, body: Combined): ConfigIssue {
  if (issue.line === undefined) return issue
  const f = [...body.files].reverse().find((x) => x.firstLine <= issue.line!)
  return f ? { ...issue, file: f.file, line: issue.line - f.firstLine + 1 } : issue
}

function describeRefusal(err: DaemonError, conn: Connection, body: Combined): string[] {
  if (err.status !== 422 || err.issues.length === 0) return describeDaemonError(err, conn)
  const lines = err.issues.map((i) => formatIssue(locate(i, body)))
  const n = err.issues.filter((i) => i.severity === 'error').length
  lines.push(`weft: the daemon refused it: ${n} error${n === 1 ? '' : 's'} (${err.code}); nothing was changed`)
  return lines
}

function readSource(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8')
  } catch (err) {
    throw new CliError(`weft apply: cannot read ${file}: ${(err as Error).message}`)
  }
}

/** One line per resource: "Service/payments created" (" -n ns" outside the default namespace). */
export function describeChanges(changes: readonly Change[], dryRun = false): string {
  return changes
    .map((c) => `${c.kind}/${c.name}${c.namespace && c.namespace !== 'default' ? ` -n ${c.namespace}` : ''} ${c.action}${dryRun && c.action !== 'unchanged' ? ' (dry run)' : ''}\n`)
    .join('')
}

function formatWarning(w: unknown, body: Combined): string {
  if (typeof w === 'string') return `warning ${w}`
  const issue = w as ConfigIssue
  if (typeof issue?.message === 'string') return formatIssue(locate(issue, body))
  return `warning ${JSON.stringify(w)}`
}
