// Gateway API HTTPRoute and GRPCRoute with a Service parent (GAMMA, the mesh profile) → Weft Routes.
// One Route per Service parent. Each match of a Gateway rule becomes one Weft rule carrying that
// rule's name, backends, timeouts and mirror, and the rules are ordered by the Gateway API's match
// precedence (exact path before prefix, longer prefix first, then method, header and query counts;
// ties keep their order) because Weft's rules are first-match in order.
import type { Obj } from '../checker.js'
import { parseDuration } from '../../util/duration.js'
import type { PathSeg } from '../types.js'
import { type ForeignResource, IGNORED, readSpec, traceOf, type Translated, UNSUPPORTED } from './foreign.js'

/** A Weft field the translation fills, relative to a rule, and the source field it comes from. */
type Mapping = [weft: PathSeg[], source: PathSeg[]]

interface RulePart {
  value: Obj
  maps: Mapping[]
}

interface GatewayRule {
  name: string
  /** Whether the source rule has a name (else "<route>#<index>"). */
  named: boolean
  path: PathSeg[]
  /** One entry per Gateway match (none: the rule matches every request). */
  matches: { weft: RulePart[]; rank: number[] }[]
  backends: { service: string; weight: number; path: PathSeg[] }[]
  extra: RulePart
}

interface Parent {
  service: string
  path: PathSeg[]
}

const FILTERS_UNSUPPORTED: Record<string, string> = {
  RequestHeaderModifier: 'request header changes',
  ResponseHeaderModifier: 'response header changes',
  RequestRedirect: 'redirects',
  URLRewrite: 'URL rewrites',
  ExtensionRef: 'implementation-specific filters',
  CORS: 'CORS',
  ExternalAuth: 'external authorization',
}

export function translateGatewayRoute(f: ForeignResource): Translated[] {
  const { c } = f
  const grpc = f.kind === 'GRPCRoute'
  const p: PathSeg[] = ['spec']
  const spec = readSpec(f, ['parentRefs', 'hostnames', 'rules'])
  if (!spec) return []
  const parents = readParents(f, spec.parentRefs)
  if (spec.hostnames !== undefined) {
    c.warn([...p, 'hostnames'], 'hostnames do not apply to a route whose parent is a Service (GAMMA): callers name the Service; ignored', IGNORED)
  }
  const rules: GatewayRule[] = []
  const rulesIn = c.array(spec.rules, [...p, 'rules']) ?? [{}]
  rulesIn.forEach((r, i) => {
    const rule = readRule(f, r, [...p, 'rules', i], i, grpc)
    if (rule) rules.push(rule)
  })
  return parents.map((parent) => emit(f, parent, rules, parents.length > 1))
}

function readParents(f: ForeignResource, value: unknown): Parent[] {
  const { c } = f
  const p: PathSeg[] = ['spec', 'parentRefs']
  const list = c.array(value, p)
  if (!list || list.length === 0) {
    c.error(p, 'needs a Service parent ({ group: "", kind: Service, name }): Weft applies the mesh profile of the Gateway API (GAMMA)', 'WEFT_E_FIELD_REQUIRED')
    return []
  }
  const out: Parent[] = []
  list.forEach((ref, i) => {
    const rp = [...p, i]
    const r = c.object(ref, rp, ['group', 'kind', 'name', 'namespace', 'port', 'sectionName'])
    if (!r) return
    // The Gateway API's defaults are kind Gateway and group gateway.networking.k8s.io; that group
    // has no Service, so `kind: Service` without a group is read as the core one.
    const kind = r.kind ?? 'Gateway'
    const group = r.group ?? (kind === 'Service' ? '' : 'gateway.networking.k8s.io')
    if (kind !== 'Service' || (group !== '' && group !== 'core')) {
      return c.error([...rp, r.kind === undefined ? 'name' : 'kind'],
        `the parent is a ${group === '' ? '' : `${String(group)} `}${String(kind)}; Weft routes traffic between services, so a parent is a Service ({ group: "", kind: Service }, GAMMA); Gateways are not Weft resources`, UNSUPPORTED)
    }
    const name = c.string(r.name, [...rp, 'name'], { required: true })
    sameNamespace(f, r.namespace, [...rp, 'namespace'])
    if (name) out.push({ service: name, path: [...rp, 'name'] })
  })
  return out
}

function sameNamespace(f: ForeignResource, value: unknown, p: PathSeg[]): void {
  if (value === undefined || value === f.namespace) return
  f.c.error(p, `names namespace ${JSON.stringify(value)}, the route is in ${f.namespace}: an instance knows a service by its name, so a route and the services it names share a namespace`, UNSUPPORTED)
}

function readRule(f: ForeignResource, value: unknown, p: PathSeg[], index: number, grpc: boolean): GatewayRule | undefined {
  const { c } = f
  const allowed = grpc ? ['name', 'matches', 'filters', 'backendRefs', 'sessionPersistence'] : ['name', 'matches', 'filters', 'backendRefs', 'timeouts', 'retry', 'sessionPersistence']
  const r = c.object(value, p, allowed)
  if (!r) return undefined
  if (r.sessionPersistence !== undefined) c.error([...p, 'sessionPersistence'], 'session persistence is not supported; the Service\'s loadBalancer: ring-hash keeps a key on one endpoint', UNSUPPORTED)
  const given = c.string(r.name, [...p, 'name'])
  const name = given ?? `${f.name}#${index}`
  const matchesIn = c.array(r.matches, [...p, 'matches']) ?? []
  const matches = matchesIn.map((m, j) => (grpc ? readGrpcMatch : readHttpMatch)(f, m, [...p, 'matches', j]))
    .filter((m): m is { weft: RulePart[]; rank: number[] } => m !== undefined)
  const backends: GatewayRule['backends'] = []
  ;(c.array(r.backendRefs, [...p, 'backendRefs']) ?? []).forEach((b, k) => {
    const ref = readServiceRef(f, b, [...p, 'backendRefs', k], ['group', 'kind', 'name', 'namespace', 'port', 'weight', 'filters'])
    if (!ref) return
    if (ref.obj.filters !== undefined && (!Array.isArray(ref.obj.filters) || ref.obj.filters.length > 0)) {
      c.error([...p, 'backendRefs', k, 'filters'], 'filters on one backend are not supported; Weft filters (RequestMirror) apply to the whole rule', UNSUPPORTED)
    }
    const weight = c.number(ref.obj.weight, [...p, 'backendRefs', k, 'weight'], { min: 0, max: 1_000_000, integer: true }) ?? 1
    backends.push({ service: ref.name, weight, path: [...p, 'backendRefs', k] })
  })
  const extra: RulePart = { value: {}, maps: [] }
  readFilters(f, r.filters, [...p, 'filters'], extra)
  if (!grpc) {
    readTimeouts(f, r.timeouts, [...p, 'timeouts'], extra)
    readRetry(f, r.retry, [...p, 'retry'], extra)
  }
  return { name, named: given !== undefined, path: p, matches, backends, extra }
}

/** A backendRef or mirror backendRef: a Service of the route's namespace. */
function readServiceRef(f: ForeignResource, value: unknown, p: PathSeg[], allowed: string[]): { name: string; obj: Obj } | undefined {
  const { c } = f
  const r = c.object(value, p, allowed)
  if (!r) return undefined
  const kind = r.kind ?? 'Service'
  const group = r.group ?? ''
  if (kind !== 'Service' || (group !== '' && group !== 'core')) {
    return void c.error([...p, 'kind'], `a backend is a Service ({ kind: Service }), not ${group === '' ? '' : `${String(group)} `}${String(kind)}`, UNSUPPORTED)
  }
  sameNamespace(f, r.namespace, [...p, 'namespace'])
  // `port` picks the Service's port; a Weft Service's endpoints carry their ports: nothing to pick.
  const name = c.string(r.name, [...p, 'name'], { required: true })
  return name ? { name, obj: r } : undefined
}

function readHttpMatch(f: ForeignResource, value: unknown, p: PathSeg[]): { weft: RulePart[]; rank: number[] } | undefined {
  const { c } = f
  const m = c.object(value, p, ['path', 'headers', 'queryParams', 'method'])
  if (!m) return undefined
  const common: RulePart = { value: {}, maps: [] }
  if (m.method !== undefined) {
    common.value.method = m.method
    common.maps.push([['method'], [...p, 'method']])
  }
  const headers = readNameValues(f, m.headers, [...p, 'headers'], 'headers', true, common)
  const query = readNameValues(f, m.queryParams, [...p, 'queryParams'], 'query', false, common)
  // No path match is PathPrefix "/" (the Gateway API's default).
  const pm = c.object(m.path, [...p, 'path'], ['type', 'value']) ?? {}
  const type = pm.type ?? 'PathPrefix'
  const text = typeof pm.value === 'string' ? pm.value : pm.value === undefined ? '/' : undefined
  if (text === undefined) return void c.error([...p, 'path', 'value'], 'must be a string')
  const vp: PathSeg[] = pm.value === undefined ? p : [...p, 'path', 'value']
  const withPath = (path: Obj): RulePart => ({ value: { ...common.value, path }, maps: [...common.maps, [['path'], vp]] })
  let parts: RulePart[]
  let kindRank: number
  let length = text.length
  if (type === 'Exact') {
    parts = [withPath({ exact: text })]
    kindRank = 3
  } else if (type === 'RegularExpression') {
    parts = [withPath({ regex: text })]
    kindRank = 2
  } else if (type === 'PathPrefix') {
    // Gateway prefixes match whole segments: "/foo" matches /foo and /foo/bar, never /foobar.
    const base = text.length > 1 && text.endsWith('/') ? text.slice(0, -1) : text
    length = base.length
    parts = base === '/' ? [withPath({ prefix: '/' })] : [withPath({ exact: base }), withPath({ prefix: `${base}/` })]
    kindRank = 1
  } else {
    return void c.error([...p, 'path', 'type'], `must be one of Exact | PathPrefix | RegularExpression (got ${JSON.stringify(type)})`)
  }
  return { weft: parts, rank: [kindRank, length, m.method !== undefined ? 1 : 0, headers, query] }
}

function readGrpcMatch(f: ForeignResource, value: unknown, p: PathSeg[]): { weft: RulePart[]; rank: number[] } | undefined {
  const { c } = f
  const m = c.object(value, p, ['method', 'headers'])
  if (!m) return undefined
  const part: RulePart = { value: {}, maps: [] }
  const headers = readNameValues(f, m.headers, [...p, 'headers'], 'headers', true, part)
  const mm = c.object(m.method, [...p, 'method'], ['type', 'service', 'method'])
  let serviceLen = 0
  let methodLen = 0
  if (mm) {
    const service = c.string(mm.service, [...p, 'method', 'service'])
    const method = c.string(mm.method, [...p, 'method', 'method'])
    serviceLen = service?.length ?? 0
    methodLen = method?.length ?? 0
    const type = mm.type ?? 'Exact'
    if (service === undefined && method === undefined) c.error([...p, 'method'], 'needs service, method or both', 'WEFT_E_FIELD_REQUIRED')
    else if (type === 'Exact') {
      part.value.grpc = { ...(service !== undefined ? { service } : {}), ...(method !== undefined ? { method } : {}) }
      part.maps.push([['grpc'], [...p, 'method']])
    } else if (type === 'RegularExpression') {
      // A gRPC call's path is /<service>/<method>.
      part.value.path = { regex: `/(?:${service ?? '[^/]+'})/(?:${method ?? '[^/]+'})` }
      part.maps.push([['path'], [...p, 'method']])
    } else c.error([...p, 'method', 'type'], `must be Exact or RegularExpression (got ${JSON.stringify(type)})`)
  }
  return { weft: [part], rank: [serviceLen, methodLen, headers] }
}

/** Gateway `[{ type, name, value }]` → a Weft map of name → { exact | regex }; returns the count. */
function readNameValues(f: ForeignResource, value: unknown, p: PathSeg[], field: 'headers' | 'query', caseless: boolean, into: RulePart): number {
  const { c } = f
  // No prototype: a header named "__proto__" or "constructor" is just a name.
  const out: Record<string, Obj> = Object.create(null)
  ;(c.array(value, p) ?? []).forEach((entry, i) => {
    const e = c.object(entry, [...p, i], ['type', 'name', 'value'])
    if (!e) return
    const name = c.string(e.name, [...p, i, 'name'], { required: true })
    const text = c.string(e.value, [...p, i, 'value'], { required: true })
    const type = e.type ?? 'Exact'
    if (type !== 'Exact' && type !== 'RegularExpression') return c.error([...p, i, 'type'], `must be Exact or RegularExpression (got ${JSON.stringify(type)})`)
    if (name === undefined || text === undefined) return
    const key = caseless ? name.toLowerCase() : name
    // The Gateway API: of entries with one name, the first is matched and the rest ignored.
    if (key in out) return c.warn([...p, i], `"${name}" is matched by an earlier entry; this one is ignored (as the Gateway API specifies)`, IGNORED)
    out[key] = type === 'Exact' ? { exact: text } : { regex: text }
    into.maps.push([[field, key], [...p, i, 'value']])
  })
  const count = Object.keys(out).length
  if (count > 0) into.value[field] = out
  return count
}

function readFilters(f: ForeignResource, value: unknown, p: PathSeg[], into: RulePart): void {
  const { c } = f
  let mirrors = 0
  ;(c.array(value, p) ?? []).forEach((entry, i) => {
    const fp = [...p, i]
    const e = c.object(entry, fp, ['type', 'requestMirror', 'requestHeaderModifier', 'responseHeaderModifier', 'requestRedirect', 'urlRewrite', 'extensionRef', 'cors', 'externalAuth'])
    if (!e) return
    const type = c.string(e.type, [...fp, 'type'], { required: true })
    if (type === undefined) return
    if (type !== 'RequestMirror') {
      const what = Object.hasOwn(FILTERS_UNSUPPORTED, type) ? FILTERS_UNSUPPORTED[type] : undefined
      return c.error([...fp, 'type'], what ? `filter ${type} (${what}) has no Weft equivalent; of the filters, Weft translates RequestMirror` : `unknown filter type "${type}"`, UNSUPPORTED)
    }
    if (++mirrors > 1) return c.error(fp, 'a Weft rule has one mirror; this is the second RequestMirror of the rule', UNSUPPORTED)
    const mp = [...fp, 'requestMirror']
    const m = c.object(e.requestMirror, mp, ['backendRef', 'percent', 'fraction'])
    if (!m) return c.error(mp, 'is required', 'WEFT_E_FIELD_REQUIRED')
    const ref = readServiceRef(f, m.backendRef, [...mp, 'backendRef'], ['group', 'kind', 'name', 'namespace', 'port'])
    if (!ref) return m.backendRef === undefined ? c.error([...mp, 'backendRef'], 'is required', 'WEFT_E_FIELD_REQUIRED') : undefined
    const mirror: Obj = { service: ref.name }
    into.maps.push([['mirror'], fp], [['mirror', 'service'], [...mp, 'backendRef', 'name']])
    if (m.percent !== undefined) {
      mirror.percent = m.percent
      into.maps.push([['mirror', 'percent'], [...mp, 'percent']])
    } else if (m.fraction !== undefined) {
      const fr = c.object(m.fraction, [...mp, 'fraction'], ['numerator', 'denominator'])
      const num = c.number(fr?.numerator, [...mp, 'fraction', 'numerator'], { min: 0, integer: true })
      const den = c.number(fr?.denominator, [...mp, 'fraction', 'denominator'], { min: 1, integer: true }) ?? 100
      if (num !== undefined && num > den) c.error([...mp, 'fraction'], `numerator ${num} is more than the denominator ${den}`)
      else if (num !== undefined) mirror.percent = (num / den) * 100
      into.maps.push([['mirror', 'percent'], [...mp, 'fraction']])
    }
    into.value.mirror = mirror
  })
}

function readTimeouts(f: ForeignResource, value: unknown, p: PathSeg[], into: RulePart): void {
  const { c } = f
  const t = c.object(value, p, ['request', 'backendRequest'])
  if (!t) return
  const zero = (field: string) => c.error([...p, field], '"0s" (no timeout) has no Weft equivalent: every Weft call has a deadline; leave it out to use the Service\'s timeout', UNSUPPORTED)
  if (t.request !== undefined) {
    if (parseDuration(t.request) === 0) zero('request')
    else {
      into.value.timeout = t.request
      into.maps.push([['timeout'], [...p, 'request']])
    }
  }
  if (t.backendRequest !== undefined) {
    if (parseDuration(t.backendRequest) === 0) zero('backendRequest')
    else {
      // The Gateway API's per-backend-request timeout is a try's timeout.
      into.value.retries = { ...(into.value.retries as Obj | undefined), perTryTimeout: t.backendRequest }
      into.maps.push([['retries', 'perTryTimeout'], [...p, 'backendRequest']])
    }
  }
}

/** The Gateway API's HTTPRoute retry (GEP-1731): codes, attempts (retries), backoff. */
function readRetry(f: ForeignResource, value: unknown, p: PathSeg[], into: RulePart): void {
  const { c } = f
  const r = c.object(value, p, ['codes', 'attempts', 'backoff'])
  if (!r) return
  const retries: Obj = { ...(into.value.retries as Obj | undefined) }
  if (r.attempts !== undefined) {
    retries.attempts = r.attempts
    into.maps.push([['retries', 'attempts'], [...p, 'attempts']])
  }
  if (r.codes !== undefined) {
    const codes = c.array(r.codes, [...p, 'codes']) ?? []
    // GEP-1731: connection errors are retried too.
    retries.retryOn = ['connect-failure', ...codes.map((code) => String(code))]
    into.maps.push([['retries', 'retryOn'], [...p, 'codes']])
  }
  if (r.backoff !== undefined) {
    const ms = parseDuration(r.backoff)
    retries.backoff = ms === undefined ? { base: r.backoff } : { base: r.backoff, max: `${ms * 10}ms` }
    into.maps.push([['retries', 'backoff'], [...p, 'backoff']])
  }
  into.value.retries = retries
}

function emit(f: ForeignResource, parent: Parent, rules: GatewayRule[], several: boolean): Translated {
  const name = several ? `${f.name}.${parent.service}` : f.name
  const trace = traceOf(f)
  trace.map(['spec', 'service'], parent.path)
  trace.map(['spec', 'rules'], ['spec', 'rules'])
  // Each Gateway match is a Weft rule; a rule without matches matches everything (rank: "/" prefix).
  const flat = rules.flatMap((rule) => (rule.matches.length ? rule.matches : [{ weft: [], rank: f.kind === 'GRPCRoute' ? [0, 0, 0] : [1, 1, 0, 0, 0] }])
    .map((match) => ({ rule, match })))
  const order = flat.map((_, i) => i).sort((a, b) => compareRank(flat[b]!.match.rank, flat[a]!.match.rank) || a - b)
  const weftRules = order.map((i, w) => {
    const { rule, match } = flat[i]!
    const rp: PathSeg[] = ['spec', 'rules', w]
    trace.map(rp, rule.path)
    const out: Obj = { name: rule.name }
    trace.map([...rp, 'name'], rule.named ? [...rule.path, 'name'] : rule.path)
    if (match.weft.length) {
      out.matches = match.weft.map((part, j) => {
        for (const [weft, source] of part.maps) trace.map([...rp, 'matches', j, ...weft], source)
        return part.value
      })
    }
    if (rule.backends.length) {
      trace.map([...rp, 'backends'], [...rule.path, 'backendRefs'])
      out.backends = rule.backends.map((b, k) => {
        trace.map([...rp, 'backends', k], b.path)
        trace.map([...rp, 'backends', k, 'service'], [...b.path, 'name'])
        trace.map([...rp, 'backends', k, 'weight'], [...b.path, 'weight'])
        return b.service === parent.service ? { weight: b.weight } : { service: b.service, weight: b.weight }
      })
    }
    for (const [weft, source] of rule.extra.maps) trace.map([...rp, ...weft], source)
    return { ...out, ...rule.extra.value }
  })
  const value = { apiVersion: 'weft/v1', kind: 'Route', metadata: { name, namespace: f.namespace }, spec: { service: parent.service, rules: weftRules } }
  return trace.resource(value, `${f.kind}/${f.name} (as Route${several ? ` ${name}` : ''})`)
}

function compareRank(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}
