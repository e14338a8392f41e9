// `weft delete KIND NAME [-n NS]`: removes one policy resource (DELETE /v1/policy/:kind/:name).
// The daemon refuses (422) when the rest would be invalid, e.g. a Route left without its Service.
import { CONNECTION_FLAGS, parseArgs, UsageError } from './args.js'
import { withClient } from './client.js'

/** kubectl-style spellings of the kinds: "service", "svc", "routes" … → the resource kind. */
const KIND_ALIASES: Record<string, string> = {
  service: 'Service', services: 'Service', svc: 'Service',
  route: 'Route', routes: 'Route',
  meshconfig: 'MeshConfig', meshconfigs: 'MeshConfig',
  authorizationpolicy: 'AuthorizationPolicy', authorizationpolicies: 'AuthorizationPolicy',
  requestauthentication: 'RequestAuthentication', requestauthentications: 'RequestAuthentication',
  identityrevocation: 'IdentityRevocation', identityrevocations: 'IdentityRevocation',
  // SMI and Gateway API kinds, stored as written (config/translate).
  httproute: 'HTTPRoute', httproutes: 'HTTPRoute', grpcroute: 'GRPCRoute', grpcroutes: 'GRPCRoute',
  trafficsplit: 'TrafficSplit', trafficsplits: 'TrafficSplit', ts: 'TrafficSplit',
  httproutegroup: 'HTTPRouteGroup', httproutegroups: 'HTTPRouteGroup', traffictarget: 'TrafficTarget', traffictargets: 'TrafficTarget',
}

export function canonicalKind(kind: string): string {
  return KIND_ALIASES[kind.toLowerCase()] ?? kind
}

export async function del(argv: readonly string[]): Promise<number> {
  const args = parseArgs('delete', argv, { ...CONNECTION_FLAGS, namespace: { kind: 'string', short: 'n' } })
  if (args.positional.length !== 2) throw new UsageError('weft delete: needs KIND NAME (e.g. weft delete route payments-canary)')
  const kind = canonicalKind(args.positional[0]!)
  const name = args.positional[1]!
  const ns = args.strings.namespace
  return withClient(args, async (client) => {
    const q = ns === undefined ? '' : `?namespace=${encodeURIComponent(ns)}`
    const answer = await client.call<{ version: number }>('DELETE', `/v1/policy/${encodeURIComponent(kind)}/${encodeURIComponent(name)}${q}`)
    process.stdout.write(`${kind}/${name}${ns && ns !== 'default' ? ` -n ${ns}` : ''} deleted: version ${answer.version}\n`)
    return 0
  })
}
