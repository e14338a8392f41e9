// Validates a Route resource's spec into RouteSettings (rules in order; first match wins).
import type { Checker } from './checker.js'
import type { FaultSpec, MatchSpec, MirrorSpec, PathSeg, RouteSettings, RuleSettings, ServiceSettings, StringMatch } from './types.js'
import { validateRetries } from './validate-service.js'

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT']
/** Nested quantifiers such as (a+)+ or (a*)* backtrack catastrophically; refuse them. */
const NESTED_QUANTIFIER = /\([^)]*[+*][^)]*\)[+*{]/

export function validateRoute(c: Checker, name: string, namespace: string, specIn: unknown, order: number,
  services: Map<string, ServiceSettings>): RouteSettings | undefined {
  const p = ['spec']
  const spec = c.object(specIn, p, ['service', 'rules'])
  if (!spec) return void c.error(p, 'is required', 'WEFT_E_FIELD_REQUIRED')
  const service = c.string(spec.service, [...p, 'service'], { required: true })
  const svc = service ? services.get(service) : undefined
  if (service && !svc) c.error([...p, 'service'], `unknown service "${service}" (no Service resource with that name)`, 'WEFT_E_REF_UNKNOWN')
  const rulesIn = c.array(spec.rules, [...p, 'rules'])
  if (!rulesIn || rulesIn.length === 0) return void c.error([...p, 'rules'], 'needs at least one rule', 'WEFT_E_FIELD_REQUIRED')
  const rules: RuleSettings[] = []
  rulesIn.forEach((ruleIn, i) => {
    const rp = [...p, 'rules', i]
    const rule = c.object(ruleIn, rp, ['name', 'matches', 'backends', 'timeout', 'retries', 'fault', 'mirror'])
    if (!rule) return
    const matches = (c.array(rule.matches, [...rp, 'matches']) ?? []).map((m, j) => validateMatch(c, m, [...rp, 'matches', j]))
    const backends = (c.array(rule.backends, [...rp, 'backends']) ?? []).map((b, j) => {
      const bp = [...rp, 'backends', j]
      const be = c.object(b, bp, ['service', 'subset', 'weight']) ?? {}
      const other = c.string(be.service, [...bp, 'service'])
      const subset = c.labels(be.subset, [...bp, 'subset']) ?? {}
      const weight = c.number(be.weight, [...bp, 'weight'], { min: 0, max: 1_000_000, integer: true }) ?? 1
      // A backend may be another Service (Istio's destination host, Gateway API's backendRefs).
      const owner = other === undefined || other === service ? svc : services.get(other)
      if (other !== undefined && other !== service && !owner) c.error([...bp, 'service'], `unknown service "${other}" (no Service resource with that name)`, 'WEFT_E_REF_UNKNOWN')
      else if (owner && svc && owner !== svc && owner.protocol !== svc.protocol) c.error([...bp, 'service'], `service "${other}" speaks ${owner.protocol}, the route's service "${service}" ${svc.protocol}`)
      if (owner) warnEmptySubset(c, [...bp, 'subset'], owner, subset, 'requests to it fail with WEFT_ERR_NO_ENDPOINTS')
      return other === undefined || other === service ? { subset, weight } : { service: other, subset, weight }
    })
    if (backends.length > 0 && backends.every((b) => b.weight === 0)) c.error([...rp, 'backends'], 'weights add up to 0')
    rules.push({
      name: c.string(rule.name, [...rp, 'name']) ?? `${name}#${i}`,
      index: i,
      matches: matches.filter((m): m is MatchSpec => m !== undefined),
      backends: backends.length ? backends : [{ subset: {}, weight: 1 }],
      timeoutMs: c.duration(rule.timeout, [...rp, 'timeout'], { min: 1 }),
      retries: rule.retries === undefined ? undefined : validateRetries(c, rule.retries, [...rp, 'retries'], svc?.retries),
      fault: validateFault(c, rule.fault, [...rp, 'fault']),
      mirror: service ? validateMirror(c, rule.mirror, [...rp, 'mirror'], service, services) : undefined,
    })
  })
  if (!service) return undefined
  return { name, namespace, service, rules, order }
}

function validateMatch(c: Checker, value: unknown, p: PathSeg[]): MatchSpec | undefined {
  const m = c.object(value, p, ['path', 'method', 'methods', 'headers', 'query', 'grpc'])
  if (!m) return undefined
  const out: MatchSpec = {}
  if (m.grpc !== undefined) {
    const g = c.object(m.grpc, [...p, 'grpc'], ['service', 'method'])
    if (g) {
      const service = c.string(g.service, [...p, 'grpc', 'service'])
      const method = c.string(g.method, [...p, 'grpc', 'method'])
      if (service === undefined && method === undefined) c.error([...p, 'grpc'], 'needs service, method or both')
      else if (m.path !== undefined) c.error([...p, 'grpc'], 'a match has either path or grpc, not both (grpc is a path match on /service/method)')
      else if (service?.includes('/') || method?.includes('/')) c.error([...p, 'grpc'], 'service and method are names ("pkg.Ledger", "Get"), without "/"')
      else out.grpc = { service, method }
    }
  }
  if (m.path !== undefined) out.path = validateStringMatch(c, typeof m.path === 'string' ? { exact: m.path } : m.path, [...p, 'path'], true)
  const methods = m.methods !== undefined ? c.array(m.methods, [...p, 'methods']) : m.method !== undefined ? [m.method] : undefined
  if (methods) {
    out.methods = []
    methods.forEach((v, i) => {
      const method = c.string(v, m.methods !== undefined ? [...p, 'methods', i] : [...p, 'method'])?.toUpperCase()
      if (method && !METHODS.includes(method)) c.error(m.methods !== undefined ? [...p, 'methods', i] : [...p, 'method'], `unknown HTTP method "${method}"`)
      else if (method) out.methods!.push(method)
    })
  }
  for (const field of ['headers', 'query'] as const) {
    const map = c.object(m[field], [...p, field], Object.keys((m[field] as object | undefined) ?? {}))
    if (!map) continue
    const rec: Record<string, StringMatch> = {}
    for (const [k, v] of Object.entries(map)) {
      const sm = validateStringMatch(c, typeof v === 'object' && v !== null ? v : { exact: String(v) }, [...p, field, k], false)
      if (sm) rec[field === 'headers' ? k.toLowerCase() : k] = sm
    }
    out[field] = rec
  }
  return out
}

function validateStringMatch(c: Checker, value: unknown, p: PathSeg[], isPath: boolean): StringMatch | undefined {
  const sm = c.object(value, p, ['exact', 'prefix', 'regex'])
  if (!sm) return undefined
  const keys = Object.keys(sm).filter((k) => sm[k] !== undefined)
  if (keys.length !== 1) return void c.error(p, 'needs exactly one of exact, prefix, regex')
  const key = keys[0] as keyof StringMatch
  const text = c.string(sm[key], [...p, key])
  if (text === undefined) return undefined
  if (isPath && key !== 'regex' && !text.startsWith('/')) return void c.error([...p, key], `a path must start with "/" (got "${text}")`)
  if (key === 'regex') {
    try {
      new RegExp(text)
    } catch (err) {
      return void c.error([...p, key], `invalid regular expression: ${(err as Error).message}`, 'WEFT_E_REGEX_INVALID')
    }
    if (NESTED_QUANTIFIER.test(text)) return void c.error([...p, key], `regular expression "${text}" has nested quantifiers and can backtrack catastrophically`, 'WEFT_E_REGEX_UNSAFE')
  }
  return { [key]: text }
}

/** WEFT_W_SUBSET_EMPTY when no static endpoint of `svc` has the subset's labels (DNS: not known here). */
function warnEmptySubset(c: Checker, p: PathSeg[], svc: ServiceSettings, subset: Record<string, string>, consequence: string): void {
  if (Object.keys(subset).length === 0 || svc.dns || svc.endpoints.some((e) => Object.entries(subset).every(([k, v]) => e.labels[k] === v))) return
  c.warn(p, `no endpoint of service "${svc.name}" has labels ${JSON.stringify(subset)}; ${consequence}`, 'WEFT_W_SUBSET_EMPTY')
}

function validateMirror(c: Checker, value: unknown, p: PathSeg[], routeService: string, services: Map<string, ServiceSettings>): MirrorSpec | undefined {
  const m = c.object(value, p, ['service', 'subset', 'percent'])
  if (!m) return undefined
  const service = c.string(m.service, [...p, 'service']) ?? routeService
  const svc = services.get(service)
  if (!svc) return void c.error([...p, 'service'], `unknown service "${service}" (no Service resource with that name)`, 'WEFT_E_REF_UNKNOWN')
  const subset = c.labels(m.subset, [...p, 'subset']) ?? {}
  const percent = c.number(m.percent, [...p, 'percent'], { min: 0, max: 100 }) ?? 100
  warnEmptySubset(c, [...p, 'subset'], svc, subset, 'mirrored copies fail with WEFT_ERR_NO_ENDPOINTS (the callers never see it)')
  if (svc.protocol === 'grpc' || services.get(routeService)?.protocol === 'grpc') {
    c.warn(p, 'gRPC calls are not mirrored (only HTTP requests are); this mirror applies to HTTP calls of the rule only', 'WEFT_W_MIRROR_GRPC')
  }
  return { service, subset, percent }
}

function validateFault(c: Checker, value: unknown, p: PathSeg[]): FaultSpec | undefined {
  const f = c.object(value, p, ['delay', 'abort'])
  if (!f) return undefined
  const out: FaultSpec = {}
  const delay = c.object(f.delay, [...p, 'delay'], ['percent', 'fixedDelay'])
  if (delay) {
    const ms = c.duration(delay.fixedDelay, [...p, 'delay', 'fixedDelay'])
    if (ms === undefined) c.error([...p, 'delay', 'fixedDelay'], 'is required', 'WEFT_E_FIELD_REQUIRED')
    out.delay = { percent: c.number(delay.percent, [...p, 'delay', 'percent'], { min: 0, max: 100 }) ?? 100, fixedDelayMs: ms ?? 0 }
  }
  const abort = c.object(f.abort, [...p, 'abort'], ['percent', 'httpStatus'])
  if (abort) {
    const status = c.number(abort.httpStatus, [...p, 'abort', 'httpStatus'], { min: 200, max: 599, integer: true })
    if (status === undefined) c.error([...p, 'abort', 'httpStatus'], 'is required', 'WEFT_E_FIELD_REQUIRED')
    out.abort = { percent: c.number(abort.percent, [...p, 'abort', 'percent'], { min: 0, max: 100 }) ?? 100, httpStatus: status ?? 503 }
  }
  return out
}
