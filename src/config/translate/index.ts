// SMI and Gateway API resources, translated into Weft resources before validation (ARCHITECTURE §4:
// "existing YAML works"). Everything that reads policy validates through validatePolicy, so a file,
// `weft apply`, the daemon and every instance translate alike; the daemon stores what the user
// wrote. A translated resource keeps the way back to its source: findings name the source kind,
// its field path and its line:column. A field Weft cannot honour is an error naming it, never
// dropped (RELIABILITY: nothing lost quietly).
import { Checker, type Obj } from '../checker.js'
import { loadValue, type RawResource } from '../load.js'
import { DNS_NAME } from '../names.js'
import type { ConfigIssue } from '../types.js'
import type { ForeignResource } from './foreign.js'
import { translateGatewayRoute } from './gateway.js'
import { readRouteGroup, type RouteGroups, translateTrafficSplit, translateTrafficTarget } from './smi.js'

/** API group → the versions and kinds translated. */
export const FOREIGN_GROUPS: Record<string, { versions: readonly string[]; kinds: readonly string[] }> = {
  'gateway.networking.k8s.io': { versions: ['v1', 'v1beta1', 'v1alpha2'], kinds: ['HTTPRoute', 'GRPCRoute'] },
  'split.smi-spec.io': { versions: ['v1alpha2', 'v1alpha3', 'v1alpha4'], kinds: ['TrafficSplit'] },
  'specs.smi-spec.io': { versions: ['v1alpha2', 'v1alpha3', 'v1alpha4'], kinds: ['HTTPRouteGroup'] },
  'access.smi-spec.io': { versions: ['v1alpha2', 'v1alpha3'], kinds: ['TrafficTarget'] },
}

/** The API group of a resource Weft translates, from its apiVersion "<group>/<version>". */
function foreignGroup(value: unknown): string | undefined {
  const apiVersion = (value as { apiVersion?: unknown } | null)?.apiVersion
  if (typeof apiVersion !== 'string') return undefined
  const group = apiVersion.slice(0, apiVersion.lastIndexOf('/'))
  return Object.hasOwn(FOREIGN_GROUPS, group) ? group : undefined
}

/** The resources with each SMI / Gateway API one replaced by what it becomes (in place, in order). */
export function translateForeign(resources: readonly RawResource[], issues: ConfigIssue[]): RawResource[] {
  if (!resources.some((r) => foreignGroup(r.value) !== undefined)) return [...resources]
  const read = resources.map((raw) => (foreignGroup(raw.value) !== undefined ? readForeign(raw, issues) ?? null : raw))
  const groups: RouteGroups = new Map()
  for (const f of read) {
    if (!isForeign(f) || f.kind !== 'HTTPRouteGroup') continue
    const key = `${f.namespace}/${f.name}`
    if (groups.has(key)) f.c.error(['metadata', 'name'], `duplicate HTTPRouteGroup "${f.name}" in namespace ${f.namespace}`, 'WEFT_E_DUPLICATE')
    else groups.set(key, readRouteGroup(f))
  }
  const trustDomain = meshTrustDomain(resources)
  const out: RawResource[] = []
  for (const item of read) {
    if (item === null) continue
    if (!isForeign(item)) out.push(item)
    else if (item.kind === 'HTTPRoute' || item.kind === 'GRPCRoute') out.push(...translateGatewayRoute(item))
    else if (item.kind === 'TrafficSplit') out.push(...translateTrafficSplit(item, groups))
    else if (item.kind === 'TrafficTarget') out.push(...translateTrafficTarget(item, groups, trustDomain))
  }
  return out
}

/** The Weft resources JS values stand for (for code that reads Routes without validating). */
export function translateValues(values: readonly object[]): object[] {
  return translateForeign(loadValue(values).resources, []).map((r) => r.value as object)
}

function isForeign(x: RawResource | ForeignResource | null): x is ForeignResource {
  return x !== null && 'c' in x
}

function readForeign(raw: RawResource, issues: ConfigIssue[]): ForeignResource | undefined {
  const v = raw.value as Obj
  const kind = typeof v.kind === 'string' ? v.kind : '?'
  const meta = (typeof v.metadata === 'object' && v.metadata !== null ? v.metadata : {}) as Obj
  const c = new Checker(raw, `${kind}/${typeof meta.name === 'string' ? meta.name : '?'}`, issues)
  const apiVersion = v.apiVersion as string
  const slash = apiVersion.lastIndexOf('/')
  const group = apiVersion.slice(0, slash)
  const version = apiVersion.slice(slash + 1)
  const known = FOREIGN_GROUPS[group]!
  // Kubernetes adds status (and metadata such as uid, resourceVersion) to what `kubectl get` prints.
  c.object(v, [], ['apiVersion', 'kind', 'metadata', 'spec', 'status', ...(kind === 'HTTPRouteGroup' ? ['matches'] : [])])
  if (!known.versions.includes(version)) {
    c.error(['apiVersion'], `${group} ${version} is not translated (Weft reads ${known.versions.map((x) => `${group}/${x}`).join(', ')})`, 'WEFT_E_KIND_UNKNOWN')
    return undefined
  }
  if (!known.kinds.includes(kind)) {
    c.error(['kind'], `kind "${kind}" of ${group} is not translated (Weft reads ${known.kinds.join(', ')}${group === 'gateway.networking.k8s.io' ? ' with a Service parent' : ''})`, 'WEFT_E_KIND_UNKNOWN')
    return undefined
  }
  if (typeof v.metadata !== 'object' || v.metadata === null || Array.isArray(v.metadata)) {
    c.error(['metadata'], 'is required (with a name)', 'WEFT_E_FIELD_REQUIRED')
    return undefined
  }
  const name = c.string(meta.name, ['metadata', 'name'], { required: true, pattern: DNS_NAME })
  const namespace = c.string(meta.namespace, ['metadata', 'namespace'], { pattern: DNS_NAME }) ?? 'default'
  if (name === undefined) return undefined
  return { raw, c, group, version, kind, name, namespace, value: v }
}

/** The trust domain SMI service accounts become SPIFFE IDs in: the MeshConfig's, else the default. */
function meshTrustDomain(resources: readonly RawResource[]): string {
  for (const r of resources) {
    const v = r.value as { apiVersion?: unknown; kind?: unknown; spec?: { trustDomain?: unknown } } | null
    if (v?.apiVersion === 'weft/v1' && v.kind === 'MeshConfig' && typeof v.spec?.trustDomain === 'string') return v.spec.trustDomain
  }
  return 'weft.local'
}
