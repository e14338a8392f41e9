// `weft history` (GET /v1/history: every policy version, newest first) and `weft rollback VERSION`
// (POST /v1/rollback: the policy as it was at VERSION becomes a new version).
import { CONNECTION_FLAGS, OUTPUT_FLAG, outputFormat, parseArgs, UsageError } from './args.js'
import { describeChanges, type Change } from './apply.js'
import { withClient } from './client.js'
import { render, table } from './table.js'

interface HistoryEntry {
  version: number
  at: string
  action: string
  summary: string
}

export async function history(argv: readonly string[]): Promise<number> {
  const args = parseArgs('history', argv, { ...CONNECTION_FLAGS, ...OUTPUT_FLAG })
  if (args.positional.length > 0) throw new UsageError(`weft history: unexpected argument ${args.positional[0]}`)
  const format = outputFormat('history', args)
  return withClient(args, async (client) => {
    const answer = await client.call<{ entries: HistoryEntry[] }>('GET', '/v1/history')
    process.stdout.write(render(format, answer, () =>
      answer.entries.length === 0
        ? 'no policy versions yet\n'
        : table(['VERSION', 'AT', 'ACTION', 'SUMMARY'], answer.entries.map((e) => [String(e.version), e.at, e.action, e.summary]))))
    return 0
  })
}

export async function rollback(argv: readonly string[]): Promise<number> {
  const args = parseArgs('rollback', argv, CONNECTION_FLAGS)
  const [v, ...rest] = args.positional
  const version = Number(v)
  if (v === undefined || rest.length > 0 || !Number.isInteger(version) || version < 0) {
    throw new UsageError('weft rollback: needs one VERSION (a number from `weft history`)')
  }
  return withClient(args, async (client) => {
    const answer = await client.call<{ version: number; changes?: Change[] }>('POST', '/v1/rollback', { body: { version } })
    process.stdout.write(describeChanges(answer.changes ?? []))
    process.stdout.write(`rolled back to the policy of version ${version}: version ${answer.version}\n`)
    return 0
  })
}
