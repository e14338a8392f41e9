// SMI (Service Mesh Interface) → Weft: TrafficSplit → Route, TrafficTarget → AuthorizationPolicy
// ALLOW, HTTPRouteGroup → the match definitions those two name (no resource of its own).
import type { Obj } from '../checker.js'
import type { RawResource } from '../load.js'
import type { PathSeg } from '../types.js'
import { type ForeignResource, readSpec, traceOf, type Translated, UNSUPPORTED } from './foreign.js'
import { regexAsPattern } from './regex-pattern.js'

export interface GroupMatch {
  name: string | undefined
  raw: RawResource
  path: PathSeg[]
  pathRegex?: string
  methods?: string[]
  /** Header name (lowercase) → regular expression, with where each was written. */
  headers: { name: string; regex: string; path: PathSeg[] }[]
}

export interface RouteGroup {
  matches: GroupMatch[]
}

/** "<namespace>/<name>" → the HTTPRouteGroup's matches. */
export type RouteGroups = Map<string, RouteGroup>

export function readRouteGroup(f: ForeignResource): RouteGroup {
  const { c } = f
  // v1alpha4 puts matches under spec; v1alpha2/3 (and the TrafficSplit page's example) at the top.
  const underSpec = f.value.spec !== undefined
  const base: PathSeg[] = underSpec ? ['spec', 'matches'] : ['matches']
  const spec = underSpec ? c.object(f.value.spec, ['spec'], ['matches']) : f.value
  const list = c.array(spec?.matches, base)
  if (!list || list.length === 0) c.error(base, 'needs at least one match', 'WEFT_E_FIELD_REQUIRED')
  const matches: GroupMatch[] = []
  const names = new Set<string>()
  ;(list ?? []).forEach((m, i) => {
    const p = [...base, i]
    const o = c.object(m, p, ['name', 'pathRegex', 'methods', 'headers'])
    if (!o) return
    const name = c.string(o.name, [...p, 'name'])
    if (name !== undefined && names.has(name)) c.error([...p, 'name'], `duplicate match name "${name}"`, 'WEFT_E_DUPLICATE')
    if (name !== undefined) names.add(name)
    const out: GroupMatch = { name, raw: f.raw, path: p, headers: [] }
    out.pathRegex = c.string(o.pathRegex, [...p, 'pathRegex'])
    const methods = c.array(o.methods, [...p, 'methods'])
    if (methods) {
      const list = methods.map((v, j) => c.string(v, [...p, 'methods', j])).filter((v): v is string => v !== undefined)
      if (!list.includes('*')) out.methods = list
    }
    // v1alpha4: a map of name → regex; v1alpha2/3: a list of one-entry maps.
    const entries: [string, unknown, PathSeg[]][] = []
    if (Array.isArray(o.headers)) {
      o.headers.forEach((h, j) => {
        const one = c.object(h, [...p, 'headers', j], Object.keys((h as object | null) ?? {}))
        for (const [k, v] of Object.entries(one ?? {})) entries.push([k, v, [...p, 'headers', j, k]])
      })
    } else {
      const map = c.object(o.headers, [...p, 'headers'], Object.keys((o.headers as object | null) ?? {}))
      for (const [k, v] of Object.entries(map ?? {})) entries.push([k, v, [...p, 'headers', k]])
    }
    for (const [k, v, hp] of entries) {
      const regex = c.string(v, hp)
      if (regex !== undefined) out.headers.push({ name: k.toLowerCase(), regex, path: hp })
    }
    matches.push(out)
  })
  return { matches }
}

/** spec.matches / rules[].name: an HTTPRouteGroup of the same namespace. */
function groupRef(f: ForeignResource, groups: RouteGroups, value: unknown, p: PathSeg[], allowed: string[]): { group: RouteGroup; obj: Obj } | undefined {
  const { c } = f
  const r = c.object(value, p, allowed)
  if (!r) return undefined
  const kind = c.string(r.kind, [...p, 'kind'], { required: true })
  if (kind === 'TCPRoute' || kind === 'UDPRoute') return void c.error([...p, 'kind'], `${kind}: Weft meshes HTTP and gRPC calls; an L4 route has no meaning here (write the HTTP traffic as an HTTPRouteGroup)`, UNSUPPORTED)
  if (kind !== undefined && kind !== 'HTTPRouteGroup') return void c.error([...p, 'kind'], `must be HTTPRouteGroup (got "${kind}")`)
  const name = c.string(r.name, [...p, 'name'], { required: true })
  if (kind === undefined || name === undefined) return undefined
  const group = groups.get(`${f.namespace}/${name}`)
  if (!group) return void c.error([...p, 'name'], `unknown HTTPRouteGroup "${name}" in namespace ${f.namespace}`, 'WEFT_E_REF_UNKNOWN')
  return { group, obj: r }
}

/** TrafficSplit: a Route on spec.service with one rule of weighted backends (and the groups' matches). */
export function translateTrafficSplit(f: ForeignResource, groups: RouteGroups): Translated[] {
  const { c } = f
  const p: PathSeg[] = ['spec']
  const spec = readSpec(f, ['service', 'backends', 'matches'])
  if (!spec) return []
  const service = c.string(spec.service, [...p, 'service'], { required: true })
  const trace = traceOf(f)
  trace.map(['spec', 'service'], [...p, 'service'])
  const rp: PathSeg[] = ['spec', 'rules', 0]
  trace.map(rp, p)
  const rule: Obj = { name: f.name }
  const backendsIn = c.array(spec.backends, [...p, 'backends'])
  if (!backendsIn || backendsIn.length === 0) c.error([...p, 'backends'], 'needs at least one backend', 'WEFT_E_FIELD_REQUIRED')
  trace.map([...rp, 'backends'], [...p, 'backends'])
  rule.backends = (backendsIn ?? []).map((b, k) => {
    const bp = [...p, 'backends', k]
    const o = c.object(b, bp, ['service', 'weight']) ?? {}
    const name = c.string(o.service, [...bp, 'service'], { required: true })
    let weight: number | undefined
    if (typeof o.weight === 'string') c.error([...bp, 'weight'], `weights are whole numbers (split.smi-spec.io v1alpha2 and later); "${o.weight}" is v1alpha1's quantity form`)
    else if (o.weight === undefined) c.error([...bp, 'weight'], 'is required', 'WEFT_E_FIELD_REQUIRED')
    else weight = c.number(o.weight, [...bp, 'weight'], { min: 0, integer: true })
    trace.map([...rp, 'backends', k], bp)
    trace.map([...rp, 'backends', k, 'service'], [...bp, 'service'])
    trace.map([...rp, 'backends', k, 'weight'], [...bp, 'weight'])
    return { ...(name !== undefined && name !== service ? { service: name } : {}), weight: weight ?? 0 }
  })
  // Requests no group matches go to the root service as they would without the split.
  const matches: Obj[] = []
  ;(c.array(spec.matches, [...p, 'matches']) ?? []).forEach((m, i) => {
    const ref = groupRef(f, groups, m, [...p, 'matches', i], ['kind', 'name', 'apiGroup'])
    for (const gm of ref?.group.matches ?? []) {
      const j = matches.length
      trace.map([...rp, 'matches', j], gm.path, gm.raw)
      matches.push(routeMatch(gm, (weft, source) => trace.map([...rp, 'matches', j, ...weft], source, gm.raw)))
    }
  })
  if (matches.length) rule.matches = matches
  if (service === undefined) return []
  const value = { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: f.name, namespace: f.namespace }, spec: { service, rules: [rule] } }
  return [trace.resource(value, `TrafficSplit/${f.name} (as Route)`)]
}

/** An HTTPRouteGroup match as a Route match; pathRegex is anchored at the start only. */
function routeMatch(gm: GroupMatch, map: (weft: PathSeg[], source: PathSeg[]) => void): Obj {
  const out: Obj = {}
  if (gm.pathRegex !== undefined) {
    const re = gm.pathRegex.startsWith('^') ? gm.pathRegex.slice(1) : gm.pathRegex
    out.path = { regex: `(?:${re}).*` }
    map(['path'], [...gm.path, 'pathRegex'])
  }
  if (gm.methods) {
    out.methods = gm.methods
    map(['methods'], [...gm.path, 'methods'])
  }
  if (gm.headers.length) {
    const headers: Obj = Object.create(null)
    for (const h of gm.headers) {
      headers[h.name] = { regex: h.regex }
      map(['headers', h.name], h.path)
    }
    out.headers = headers
  }
  return out
}

/**
 * TrafficTarget: an AuthorizationPolicy ALLOW on the destination service for the sources' SPIFFE
 * IDs, one rule per HTTPRouteGroup match it names. SMI denies what no TrafficTarget allows; so
 * does Weft for a service once an ALLOW policy selects it.
 */
export function translateTrafficTarget(f: ForeignResource, groups: RouteGroups, trustDomain: string): Translated[] {
  const { c } = f
  const p: PathSeg[] = ['spec']
  const spec = readSpec(f, ['destination', 'rules', 'sources'])
  if (!spec) return []
  const dest = serviceAccount(f, spec.destination, [...p, 'destination'], ['kind', 'name', 'namespace', 'port'])
  if (dest && dest.namespace !== f.namespace) {
    c.error([...p, 'destination', 'namespace'], `is ${dest.namespace}, the TrafficTarget is in ${f.namespace}: a service's access policy lives in the service's namespace`, UNSUPPORTED)
  }
  const trace = traceOf(f)
  trace.map(['spec', 'service'], [...p, 'destination', 'name'])
  trace.map(['spec', 'rules'], [...p, 'rules'])
  const sourcesIn = c.array(spec.sources, [...p, 'sources'])
  if (!sourcesIn || sourcesIn.length === 0) c.error([...p, 'sources'], 'needs at least one source', 'WEFT_E_FIELD_REQUIRED')
  const principals: string[] = []
  const sourcePaths: PathSeg[][] = []
  ;(sourcesIn ?? []).forEach((s, i) => {
    const sa = serviceAccount(f, s, [...p, 'sources', i], ['kind', 'name', 'namespace'])
    if (!sa) return
    principals.push(`spiffe://${trustDomain}/ns/${sa.namespace}/sa/${sa.name}`)
    sourcePaths.push([...p, 'sources', i, 'name'])
  })
  const port = dest?.port
  const rules: Obj[] = []
  const addRule = (rule: Obj, source: PathSeg[], raw?: RawResource): PathSeg[] => {
    const rp = ['spec', 'rules', rules.length]
    rules.push({ from: [{ principals }], ...rule })
    trace.map(rp, source, raw)
    sourcePaths.forEach((sp, i) => trace.map([...rp, 'from', 0, 'principals', i], sp))
    return rp
  }
  const rulesIn = c.array(spec.rules, [...p, 'rules']) ?? []
  if (rulesIn.length === 0) addRule(port !== undefined ? { to: [{ ports: [port] }] } : {}, [...p, 'sources'])
  rulesIn.forEach((r, i) => {
    const rp: PathSeg[] = [...p, 'rules', i]
    const ref = groupRef(f, groups, r, rp, ['kind', 'name', 'matches'])
    if (!ref) return
    const wanted = c.array(ref.obj.matches, [...rp, 'matches'])
    const selected = wanted === undefined ? ref.group.matches : wanted.flatMap((w, k) => {
      const name = c.string(w, [...rp, 'matches', k])
      const found = ref.group.matches.find((m) => m.name === name)
      if (name !== undefined && !found) c.error([...rp, 'matches', k], `HTTPRouteGroup "${String(ref.obj.name)}" has no match named "${name}"`, 'WEFT_E_REF_UNKNOWN')
      return found ? [found] : []
    })
    for (const gm of selected) {
      const op: Obj = {}
      const when: Obj[] = []
      /** Where each `when` entry was written (a header that matches anything makes none). */
      const whenFrom: PathSeg[][] = []
      if (gm.pathRegex !== undefined) {
        const pattern = regexAsPattern(gm.pathRegex, true)
        if (pattern === undefined) {
          c.error(rp, `pathRegex ${JSON.stringify(gm.pathRegex)} of match "${gm.name ?? '?'}" is a regular expression that is not a path, a prefix or a suffix; Weft authorizes by plain path patterns (exact, "prefix*", "*suffix", "*"), never regular expressions, so that an encoded path cannot slip past a rule. Write it as a prefix such as "/api/.*", or write an AuthorizationPolicy`, UNSUPPORTED)
          continue
        }
        if (pattern !== '*') op.paths = [pattern]
      }
      if (gm.methods) op.methods = gm.methods.map((m) => m.toUpperCase())
      if (port !== undefined) op.ports = [port]
      let refused = false
      for (const h of gm.headers) {
        const pattern = regexAsPattern(h.regex, false)
        if (pattern === undefined) {
          c.error(rp, `header ${h.name}: ${JSON.stringify(h.regex)} of match "${gm.name ?? '?'}" is a regular expression that is not a value, a prefix or a suffix; Weft authorizes by plain patterns, never regular expressions`, UNSUPPORTED)
          refused = true
        } else if (pattern !== '*') {
          when.push({ key: `request.headers[${h.name}]`, values: [pattern] })
          whenFrom.push(h.path)
        }
      }
      if (refused) continue
      const at = addRule({ ...(Object.keys(op).length ? { to: [op] } : {}), ...(when.length ? { when } : {}) }, gm.path, gm.raw)
      if (op.paths) trace.map([...at, 'to', 0, 'paths'], [...gm.path, 'pathRegex'], gm.raw)
      if (op.methods) trace.map([...at, 'to', 0, 'methods'], [...gm.path, 'methods'], gm.raw)
      whenFrom.forEach((from, k) => trace.map([...at, 'when', k], from, gm.raw))
    }
  })
  if (!dest) return []
  const value = { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: f.name, namespace: f.namespace }, spec: { service: dest.name, action: 'ALLOW', rules } }
  return [trace.resource(value, `TrafficTarget/${f.name} (as AuthorizationPolicy)`)]
}

/** A ServiceAccount reference; in Weft a workload's service account is its service. */
function serviceAccount(f: ForeignResource, value: unknown, p: PathSeg[], allowed: string[]): { name: string; namespace: string; port?: number } | undefined {
  const { c } = f
  const o = c.object(value, p, allowed)
  if (!o) return value === undefined || value === null ? void c.error(p, 'is required', 'WEFT_E_FIELD_REQUIRED') : undefined
  const kind = c.string(o.kind, [...p, 'kind'], { required: true })
  if (kind !== undefined && kind !== 'ServiceAccount') {
    return void c.error([...p, 'kind'], kind === 'IdentityBinding'
      ? 'IdentityBinding (access.smi-spec.io v1alpha4, a draft) is not translated; name the ServiceAccount, which in Weft is the service\'s identity'
      : `must be ServiceAccount (got "${kind}")`, UNSUPPORTED)
  }
  const name = c.string(o.name, [...p, 'name'], { required: true })
  const namespace = c.string(o.namespace, [...p, 'namespace']) ?? f.namespace
  const port = c.number(o.port, [...p, 'port'], { min: 1, max: 65535, integer: true })
  if (kind === undefined || name === undefined) return undefined
  return { name, namespace, ...(port !== undefined ? { port } : {}) }
}
