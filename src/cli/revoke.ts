// `weft revoke`, `weft unrevoke`, `weft revocations`: the emergency switch for one workload
// identity (RELIABILITY M8). Revoking stores an IdentityRevocation on the daemon (POST
// /v1/revocations): every instance ends its open mTLS connections with the identity and refuses new
// ones, and the CA signs no certificate for it, until `weft unrevoke` lifts it. An identity is a
// service (with -n NS, default "default") or its SPIFFE ID, spiffe://<td>/ns/<ns>/sa/<service>.
import { CONNECTION_FLAGS, OUTPUT_FLAG, outputFormat, parseArgs, UsageError, type ParsedArgs } from './args.js'
import { withClient } from './client.js'
import { ago, render, table } from './table.js'
import { trySpiffeId, workloadOf } from '../identity/spiffe-id.js'
import type { RevocationView } from '../daemon/revocations.js'

const REVOKE_USAGE = 'weft revoke: usage: weft revoke SERVICE|SPIFFE-ID [-n NS] --reason TEXT, or weft revoke --list [-o table|json|yaml]'
const UNREVOKE_USAGE = 'weft unrevoke: usage: weft unrevoke SERVICE|SPIFFE-ID [-n NS]'

export async function revoke(argv: readonly string[]): Promise<number> {
  const args = parseArgs('revoke', argv, { ...CONNECTION_FLAGS, ...OUTPUT_FLAG, namespace: { kind: 'string', short: 'n' }, reason: { kind: 'string' }, list: { kind: 'boolean' } })
  if (args.booleans.list) {
    if (args.positional.length > 0 || args.strings.reason !== undefined || args.strings.namespace !== undefined) throw new UsageError(REVOKE_USAGE)
    return listRevocations(args)
  }
  if (args.positional.length !== 1) throw new UsageError(REVOKE_USAGE)
  const reason = args.strings.reason
  if (reason === undefined || reason.trim() === '') throw new UsageError('weft revoke: --reason TEXT is required (it is shown in every refusal and log line)')
  const who = identityArg('revoke', args)
  const format = outputFormat('revoke', args)
  return withClient(args, async (client) => {
    const body = 'spiffeId' in who ? { spiffeId: who.spiffeId, reason } : { service: who.service, namespace: who.namespace, reason }
    const answer = await client.call<{ version: number; action: string; revocation: RevocationView }>('POST', '/v1/revocations', { body })
    const r = answer.revocation
    const what = answer.action === 'created' ? 'revoked' : answer.action === 'updated' ? 'revocation updated' : 'already revoked'
    process.stderr.write(`${what} at version ${answer.version}: instances end their mTLS connections with ${r.spiffeId} and refuse new ones; the daemon signs no certificate for it. Lift it with: weft unrevoke ${r.spiffeId}\n`)
    process.stdout.write(render(format, answer, () => revocationTable([r])))
    return 0
  })
}

export async function unrevoke(argv: readonly string[]): Promise<number> {
  const args = parseArgs('unrevoke', argv, { ...CONNECTION_FLAGS, namespace: { kind: 'string', short: 'n' } })
  if (args.positional.length !== 1) throw new UsageError(UNREVOKE_USAGE)
  const who = identityArg('unrevoke', args)
  const { namespace, service } = 'spiffeId' in who ? who.workload : who
  return withClient(args, async (client) => {
    const answer = await client.call<{ version: number; lifted: RevocationView }>('DELETE', `/v1/revocations/${encodeURIComponent(namespace)}/${encodeURIComponent(service)}`)
    process.stdout.write(`revocation of ${answer.lifted.spiffeId} lifted: version ${answer.version} (the daemon signs for it again; new connections are allowed)\n`)
    return 0
  })
}

/** `weft revocations` (and `weft revoke --list`). */
export async function revocations(argv: readonly string[]): Promise<number> {
  const args = parseArgs('revocations', argv, { ...CONNECTION_FLAGS, ...OUTPUT_FLAG })
  if (args.positional.length > 0) throw new UsageError(`weft revocations: unexpected argument ${args.positional[0]}`)
  return listRevocations(args)
}

async function listRevocations(args: ParsedArgs): Promise<number> {
  const format = outputFormat('revocations', args)
  return withClient(args, async (client) => {
    const answer = await client.call<{ version: number; revocations: RevocationView[] }>('GET', '/v1/revocations')
    process.stdout.write(render(format, answer, () => (answer.revocations.length === 0 ? 'no identity is revoked\n' : revocationTable(answer.revocations))))
    return 0
  })
}

export function revocationTable(list: readonly RevocationView[]): string {
  const now = Date.now()
  return table(['IDENTITY', 'REVOKED', 'REASON'], list.map((r) => [r.spiffeId, ago(r.revokedAt, now), r.reason]))
}

type IdentityArg = { spiffeId: string; workload: { namespace: string; service: string } } | { namespace: string; service: string }

/** The positional argument: a SPIFFE ID (no -n then), or a service name with -n. */
function identityArg(command: string, args: ParsedArgs): IdentityArg {
  const arg = args.positional[0]!
  const ns = args.strings.namespace
  if (!arg.startsWith('spiffe:')) return { service: arg, namespace: ns ?? 'default' }
  if (ns !== undefined) throw new UsageError(`weft ${command}: -n goes with a service name; a SPIFFE ID names its own namespace`)
  const id = trySpiffeId(arg)
  const workload = id ? workloadOf(id) : undefined
  if (!workload) throw new UsageError(`weft ${command}: ${arg} is not a workload SPIFFE ID (want spiffe://<trust domain>/ns/<namespace>/sa/<service>)`)
  return { spiffeId: arg, workload }
}
