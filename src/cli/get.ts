// `weft get services|endpoints|policies|instances [-o table|json|yaml]`: the daemon's lists. JSON is
// the daemon's answer as is (for scripts); YAML is the same data, except for policies, where it is
// the resources themselves as a multi-document file that `weft apply -f` takes back.
import { stringify } from 'yaml'
import type { EndpointMap } from '../control/protocol.js'
import { parseServiceKey } from '../control/service-key.js'
import { CONNECTION_FLAGS, OUTPUT_FLAG, outputFormat, parseArgs, UsageError } from './args.js'
import { withClient, type DaemonClient } from './client.js'
import { formatLabels, render, table } from './table.js'

type Format = 'table' | 'json' | 'yaml'

interface ServiceView {
  name: string
  namespace?: string
  protocol?: string
  source?: string
  endpoints?: number
}

/** GET /v1/instances: a registration as the daemon shows it (no token hashes). */
export interface InstanceView {
  id: string
  service: string
  namespace?: string
  address?: string
  port?: number
  protocol?: string
  labels?: Record<string, string>
  locality?: { region?: string; zone?: string }
  registeredAt?: string
}

interface ServicesAnswer {
  services: ServiceView[]
  /** Registry endpoints left out of every view, with why. */
  warnings?: string[]
}

function warnings(answer: ServicesAnswer): string {
  return (answer.warnings ?? []).map((w) => `warning: ${w}\n`).join('')
}

interface PolicyAnswer {
  version: number
  resources: unknown[]
}

const WHAT: Record<string, 'services' | 'endpoints' | 'policies' | 'instances'> = {
  service: 'services', services: 'services', svc: 'services',
  endpoint: 'endpoints', endpoints: 'endpoints', ep: 'endpoints',
  policy: 'policies', policies: 'policies',
  instance: 'instances', instances: 'instances',
}

export async function get(argv: readonly string[]): Promise<number> {
  const args = parseArgs('get', argv, { ...CONNECTION_FLAGS, ...OUTPUT_FLAG })
  const what = args.positional.length === 1 ? WHAT[args.positional[0]!.toLowerCase()] : undefined
  if (!what) throw new UsageError('weft get: needs one of services, endpoints, policies, instances')
  const format = outputFormat('get', args)
  return withClient(args, async (client) => {
    const text = await LISTS[what](client, format)
    process.stdout.write(text)
    return 0
  })
}

const LISTS: Record<'services' | 'endpoints' | 'policies' | 'instances', (c: DaemonClient, f: Format) => Promise<string>> = {
  async services(client, format) {
    const answer = await client.call<ServicesAnswer>('GET', '/v1/services')
    return render(format, answer, () =>
      (answer.services.length === 0
        ? 'no services\n'
        : table(['NAME', 'NAMESPACE', 'PROTOCOL', 'SOURCE', 'ENDPOINTS'], answer.services.map((s) => [
            s.name, s.namespace ?? 'default', s.protocol ?? '-', s.source ?? '-', s.endpoints === undefined ? '-' : String(s.endpoints),
          ]))) + warnings(answer))
  },

  async endpoints(client, format) {
    const answer = await client.call<{ endpoints: EndpointMap }>('GET', '/v1/endpoints')
    if (format !== 'table') return render(format, answer, () => '')
    const rows: string[][] = []
    // Keyed "<namespace>/<name>": a registration belongs to its namespace's service.
    for (const key of Object.keys(answer.endpoints).sort()) {
      const { namespace, name } = parseServiceKey(key)
      for (const e of answer.endpoints[key]!) rows.push([name, namespace, e.address, e.protocol, formatLabels(e.labels), e.instance])
    }
    const out = rows.length === 0 ? 'no endpoints registered\n' : table(['SERVICE', 'NAMESPACE', 'ADDRESS', 'PROTOCOL', 'LABELS', 'INSTANCE'], rows)
    // Endpoints whose protocol differs from their Service's are left out of every view (compose);
    // the daemon lists them with its services.
    return out + warnings(await client.call<ServicesAnswer>('GET', '/v1/services'))
  },

  async policies(client, format) {
    const answer = await client.call<PolicyAnswer>('GET', '/v1/policy')
    const resources = answer.resources.map(resourceValue)
    if (format === 'yaml') {
      return `# weft policy, version ${answer.version}\n` + resources.map((r) => stringify(r)).join('---\n')
    }
    return render(format, answer, () =>
      resources.length === 0
        ? `no policy resources (version ${answer.version})\n`
        : table(['KIND', 'NAMESPACE', 'NAME'], resources.map((r) => {
            const m = (r as { kind?: string; metadata?: { name?: string; namespace?: string } })
            return [m.kind ?? '?', m.metadata?.namespace ?? 'default', m.metadata?.name ?? '?']
          })))
  },

  async instances(client, format) {
    const answer = await client.call<{ instances: InstanceView[] }>('GET', '/v1/instances')
    return render(format, answer, () =>
      answer.instances.length === 0
        ? 'no instances registered\n'
        : table(['INSTANCE', 'SERVICE', 'NAMESPACE', 'ADDRESS', 'PROTOCOL', 'LABELS', 'LOCALITY'], answer.instances.map((i) => [
            i.id, i.service, i.namespace ?? 'default', instanceAddress(i), i.protocol ?? '-', formatLabels(i.labels), formatLocality(i.locality),
          ])))
  },
}

/** A stored resource ({ kind, namespace, name, value }) or the resource object itself. */
function resourceValue(r: unknown): object {
  const v = r as { value?: unknown; apiVersion?: unknown }
  return v.apiVersion === undefined && typeof v.value === 'object' && v.value !== null ? (v.value as object) : (r as object)
}

/** "region=eu,zone=eu-1a", or "-". */
function formatLocality(l: InstanceView['locality']): string {
  return formatLabels(Object.fromEntries(Object.entries(l ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string')))
}

/** "host:port", or "-" for a client-only instance (no serving address). */
export function instanceAddress(i: { address?: string; port?: number }): string {
  if (i.address === undefined) return '-'
  return i.port === undefined ? i.address : `${i.address.includes(':') ? `[${i.address}]` : i.address}:${i.port}`
}
