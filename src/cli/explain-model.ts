// What `weft explain` computes, without any I/O: given the view an instance of the calling service
// would get (policy resources + registry endpoints), which route rule a request takes, which
// endpoints are eligible, which settings apply, and where each came from. It goes through the
// same steps as an instance (composeView → validatePolicy → the compile's rule order and the data
// plane's match predicates and subset groups) but builds no stack and starts no discovery or pool.
import { AuthzEngine } from '../authz/engine.js'
import { mtlsModeFor } from '../identity/mtls-mode.js'
import { workloadId } from '../identity/spiffe-id.js'
import { loadValue } from '../config/load.js'
import type { ConfigIssue, MatchSpec, MeshPolicy, RetrySettings, RouteSettings, RuleSettings, ServiceSettings, StringMatch } from '../config/types.js'
import { validatePolicy } from '../config/validate.js'
import { composeView } from '../control/compose.js'
import type { EndpointMap } from '../control/protocol.js'
import { serviceKey } from '../control/service-key.js'
import { ServiceEndpoints } from '../discovery/endpoint-set.js'
import { originHost } from '../http/dispatcher.js'
import { compileMatch, compileRule, type RequestView } from '../routing/match.js'
import { formatDuration } from '../util/duration.js'
import type { HeaderRecord } from '../util/headers.js'

export interface ExplainView {
  version: number
  resources: object[]
  endpoints: EndpointMap
}

export interface ExplainRequest {
  from: string
  url: string
  method: string
  /** Header lines as given ("name: value"), in order. */
  headers: [string, string][]
}

export interface FieldCheck {
  /** What the match asks for, e.g. 'header x-canary exact "true"'. */
  wants: string
  /** What the request has, e.g. '"true"' or 'none'. */
  got: string
  ok: boolean
}

export interface RuleTrace {
  rule: string
  route: string
  /** Index of the rule in its Route. */
  index: number
  /** 'matched', 'no match', or 'not evaluated' (an earlier rule matched). */
  outcome: 'matched' | 'no match' | 'not evaluated'
  /** Per match (OR'ed), per field (AND'ed); empty when the rule has no matches (every request). */
  matches: FieldCheck[][]
}

export interface EndpointTrace {
  address: string
  labels: Record<string, string>
  eligible: boolean
  /** Why not, when not eligible. */
  why?: string
}

export interface BackendTrace {
  /** The Service whose endpoints the backend selects: the route's, or another one it names. */
  service: string
  subset: Record<string, string>
  weight: number
  /** Share of the rule's traffic, percent. */
  percent: number
  endpoints: EndpointTrace[]
  eligible: number
}

export interface Setting {
  name: string
  value: string
  /** Where it comes from: 'Route x rule 0 (spec.rules[0].timeout)', 'Service y spec.timeout', 'default'. */
  from: string
}

export type Explanation =
  | { kind: 'invalid'; version: number; from: string; issues: ConfigIssue[] }
  | { kind: 'passthrough'; version: number; from: string; method: string; url: string; host: string; reason: string; services: string[] }
  | {
      kind: 'routed'
      version: number
      from: string
      method: string
      url: string
      service: { name: string; namespace: string; protocol: string; declared: boolean }
      rules: RuleTrace[]
      /** The rule taken: a Route rule, or the service's default route. */
      chosen: { rule: string; route?: string; fallback: boolean; why: string }
      endpointSource: string
      backends: BackendTrace[]
      settings: Setting[]
      /** mTLS and AuthorizationPolicy at the destination for this caller (issue 6). */
      access: AccessTrace
      notes: string[]
    }

export interface AccessTrace {
  /** The destination's mTLS mode, and which resource set it. */
  mtls: { mode: string; from: string }
  /** The caller's SPIFFE ID as the destination would see it over mTLS. */
  principal: string
  allowed: boolean
  /** Why, in a sentence: the deciding policy and rule, or that none applies. */
  why: string
  /** Per AuthorizationPolicy in config order: applies or not, and what its rules said. */
  policies: { name: string; action: string; applies: boolean; notApplied?: string; rules: { index: number; matched: boolean; why?: string }[] }[]
}

/** Explains one request as an instance of `req.from` holding `view` would route it. */
export function explain(view: ExplainView, req: ExplainRequest): Explanation {
  const composed = composeView(view.resources, view.endpoints, { fillRouteTargets: true })
  const policy = validatePolicy(loadValue(composed.resources))
  const errors = policy.issues.filter((i) => i.severity === 'error')
  if (errors.length > 0) return { kind: 'invalid', version: view.version, from: req.from, issues: errors }

  const url = new URL(req.url)
  const method = req.method.toUpperCase()
  const host = originHost(url.origin)
  const byHost = hostTable(policy)
  const settings = host === undefined ? undefined : byHost.get(host)
  const base = { version: view.version, from: req.from, method, url: url.href }
  if (!settings) {
    const reason = host === undefined
      ? 'an IPv6 literal is never a service name'
      : /^\d+(\.\d+){3}$/.test(host) || host === 'localhost'
        ? `"${host}" is an address, not a service name`
        : `"${host}" is not a service the mesh knows`
    return { kind: 'passthrough', ...base, host: host ?? url.hostname, reason, services: [...policy.services.keys()].sort() }
  }

  const headers = headerRecord(req.headers)
  // The dispatcher sends a Host header only when the URL's authority is not the plain service name.
  if (headers.host === undefined && url.origin !== `http://${settings.name}`) headers.host = url.host
  const request: RequestView = { method, pathname: url.pathname, search: url.search.slice(1), headers }

  // The rule table in the order compileSnapshot builds it: routes by their order, rules in order.
  const routes = policy.routes.filter((r) => r.service === settings.name).sort((a, b) => a.order - b.order)
  const rules: RuleTrace[] = []
  let chosen: { rule: RuleSettings; route: RouteSettings } | undefined
  for (const route of routes) {
    for (const rule of route.rules) {
      if (chosen) {
        rules.push({ rule: rule.name, route: route.name, index: rule.index, outcome: 'not evaluated', matches: rule.matches.map((m) => checkMatch(m, request)) })
        continue
      }
      const hit = compileRule(rule.matches)(request)
      rules.push({ rule: rule.name, route: route.name, index: rule.index, outcome: hit ? 'matched' : 'no match', matches: rule.matches.map((m) => checkMatch(m, request)) })
      if (hit) chosen = { rule, route }
    }
  }

  // The Service as declared (before composeView filled in registry endpoints), if there is one.
  const declaredSpec = findSpec(view.resources, settings.name)
  const declared = declaredSpec !== undefined
  const spec = declaredSpec ?? {}
  const svcFrom = (field: string) => (spec[field] !== undefined ? `Service ${settings.name} spec.${field}` : 'default')

  const rule: RuleSettings = chosen?.rule ?? { name: 'default', index: 0, matches: [], backends: [{ subset: {}, weight: 1 }] }
  const ruleFrom = (field: string) => `Route ${chosen!.route.name} rule ${rule.index} (spec.rules[${rule.index}].${field})`
  const why = chosen
    ? rule.matches.length === 0
      ? `rule ${rule.index} of Route ${chosen.route.name} has no matches, so it takes every request that reaches it`
      : `rule ${rule.index} of Route ${chosen.route.name} is the first rule whose matches the request meets (first match wins)`
    : routes.length === 0
      ? `${settings.name} has no Route: every request takes its default route (all endpoints, the Service's settings)`
      : `no rule of ${routes.map((r) => `Route ${r.name}`).join(', ')} matches: the request takes the default route of ${settings.name} (all endpoints, the Service's settings)`

  const notes: string[] = []
  const mine = new Set([`Service/${settings.name}`, ...routes.map((r) => `Route/${r.name}`)])
  for (const w of policy.issues.filter((i) => i.severity === 'warning' && mine.has(i.resource))) notes.push(`${w.code} ${w.resource} ${w.path}: ${w.message}`)
  for (const s of composed.skipped.filter((s) => s.service === settings.name)) notes.push(`registry endpoint ${s.endpoint.address} (instance ${s.endpoint.instance}) left out: ${s.reason}`)
  if (rule.fault?.abort) notes.push(`fault injection: ${rule.fault.abort.percent}% of requests are aborted with HTTP ${rule.fault.abort.httpStatus}`)
  if (rule.fault?.delay) notes.push(`fault injection: ${rule.fault.delay.percent}% of requests are delayed ${formatDuration(rule.fault.delay.fixedDelayMs)}`)
  if (rule.mirror) {
    const m = rule.mirror
    const subset = Object.keys(m.subset).length > 0 ? ` subset ${JSON.stringify(m.subset)}` : ''
    notes.push(`mirror: ${m.percent}% of HTTP requests are also copied to ${m.service}${subset} (fire and forget, Host ${m.service}-shadow; the caller never sees the copy's answer)`)
  }
  notes.push('eligibility is by subset labels; live health (outlier ejection, panic mode) and locality are per instance and not known here')

  const retries = rule.retries ?? settings.retries
  const out: Setting[] = [
    {
      name: 'timeout',
      value: formatDuration(rule.timeoutMs ?? settings.timeoutMs),
      from: rule.timeoutMs !== undefined ? ruleFrom('timeout') : svcFrom('timeout'),
    },
    {
      name: 'retries',
      value: describeRetries(retries),
      from: rule.retries !== undefined ? `${ruleFrom('retries')}, over the Service's` : svcFrom('retries'),
    },
    { name: 'circuit breaker', value: describeBreaker(settings), from: svcFrom('circuitBreaker') },
    { name: 'outlier detection', value: describeOutlier(settings), from: svcFrom('outlierDetection') },
    { name: 'load balancer', value: describeBalancer(settings), from: svcFrom('loadBalancer') },
    { name: 'concurrency limit', value: `${settings.concurrencyLimit} in flight`, from: svcFrom('concurrencyLimit') },
  ]

  const access = explainAccess(policy, settings, req.from, method, url.pathname + url.search, Number(url.port) || 80, headers)
  if (access.policies.some((p) => p.applies)) notes.push('authorization is checked as if the caller had no end-user JWT (the server verifies JWTs; -H authorization is not verified here)')

  return {
    kind: 'routed',
    ...base,
    service: { name: settings.name, namespace: settings.namespace, protocol: settings.protocol, declared },
    rules,
    chosen: { rule: rule.name, route: chosen?.route.name, fallback: !chosen, why },
    endpointSource: endpointSource(settings, declaredSpec, (view.endpoints[serviceKey(settings.namespace, settings.name)] ?? view.endpoints[settings.name])?.length ?? 0),
    backends: traceBackends(settings, rule, policy.services),
    settings: out,
    access,
    notes,
  }
}

/** Would the destination let `from` in: its mTLS mode, and its AuthorizationPolicy on the caller's SPIFFE ID. */
function explainAccess(policy: MeshPolicy, dest: ServiceSettings, from: string, method: string, path: string, port: number, headers: HeaderRecord): AccessTrace {
  const mode = mtlsModeFor(policy, dest.name, dest.namespace)
  const pa = policy.peerAuthentication.find((p) => p.namespace === dest.namespace && p.service === dest.name) ?? policy.peerAuthentication.find((p) => p.namespace === dest.namespace && p.service === undefined)
  const principal = workloadId(policy.mesh.trustDomain, 'default', from).toString()
  const engine = new AuthzEngine(policy.authorization, { service: dest.name, namespace: dest.namespace, defaultAuthorization: policy.mesh.defaultAuthorization })
  const x = engine.explain({ principal, namespace: 'default', method, path, port, headers })
  const d = x.decision
  const why = d.reason === 'deny-matched' ? `DENY ${d.policy} rule ${d.rule} matches`
    : d.reason === 'allow-matched' ? `ALLOW ${d.policy} rule ${d.rule} matches`
      : d.reason === 'no-allow-matched' ? `ALLOW policies select ${dest.name} (${d.policy}) and none of their rules matches: denied`
        : d.reason === 'default-deny' ? `no ALLOW policy selects ${dest.name} and MeshConfig defaultAuthorization is DENY`
          : d.reason === 'no-policy' ? `no ALLOW policy selects ${dest.name} (and no DENY matches): allowed`
            : `the ${d.reason === 'path-invalid' ? 'path' : 'method'} cannot be normalised safely and a policy matches on it: denied`
  return {
    mtls: { mode, from: pa ? `PeerAuthentication ${pa.name}` : policy.peerAuthentication.length === 0 && mode === policy.mesh.mtls ? 'MeshConfig (default STRICT)' : 'MeshConfig' },
    principal,
    allowed: d.allowed,
    why,
    policies: x.policies.map((p) => ({ name: p.name, action: p.action, applies: p.applies, ...(p.notApplied ? { notApplied: p.notApplied } : {}), rules: p.rules.map((r) => ({ index: r.index, matched: r.matched, ...(r.why ? { why: r.why } : {}) })) })),
  }
}

/** The host table of compileSnapshot: "name" and "name.namespace" for every service. */
function hostTable(policy: MeshPolicy): Map<string, ServiceSettings> {
  const m = new Map<string, ServiceSettings>()
  for (const s of policy.services.values()) {
    m.set(s.name, s)
    m.set(`${s.name}.${s.namespace}`, s)
  }
  return m
}

function headerRecord(lines: [string, string][]): HeaderRecord {
  const out: HeaderRecord = {}
  for (const [name, value] of lines) {
    const key = name.toLowerCase()
    const prev = out[key]
    out[key] = prev === undefined ? value : ([] as string[]).concat(prev, value)
  }
  return out
}

function isResource(r: unknown, kind: string, name: string): boolean {
  const v = r as { kind?: unknown; metadata?: { name?: unknown } } | null
  return v?.kind === kind && v.metadata?.name === name
}

function findSpec(resources: readonly object[], name: string): Record<string, unknown> | undefined {
  const r = resources.find((r) => isResource(r, 'Service', name)) as { spec?: unknown } | undefined
  if (!r) return undefined
  return typeof r.spec === 'object' && r.spec !== null ? (r.spec as Record<string, unknown>) : {}
}

/** Each field of one match checked on its own with the data plane's predicate (compileMatch). */
function checkMatch(m: MatchSpec, req: RequestView): FieldCheck[] {
  const checks: FieldCheck[] = []
  const test = (part: MatchSpec) => compileMatch(part)({ ...req, query: undefined })
  if (m.methods) checks.push({ wants: `method in [${m.methods.join(', ')}]`, got: req.method, ok: test({ methods: m.methods }) })
  if (m.path) checks.push({ wants: `path ${stringMatch(m.path)}`, got: JSON.stringify(req.pathname), ok: test({ path: m.path }) })
  if (m.grpc) {
    const wants = [m.grpc.service && `service ${m.grpc.service}`, m.grpc.method && `method ${m.grpc.method}`].filter(Boolean).join(' ')
    checks.push({ wants: `grpc ${wants}`, got: JSON.stringify(req.pathname), ok: test({ grpc: m.grpc }) })
  }
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    const v = req.headers[name]
    checks.push({ wants: `header ${name} ${stringMatch(sm)}`, got: v === undefined ? 'none' : JSON.stringify(Array.isArray(v) ? v.join(',') : v), ok: test({ headers: { [name]: sm } }) })
  }
  for (const [name, sm] of Object.entries(m.query ?? {})) {
    const v = new URLSearchParams(req.search).get(name)
    checks.push({ wants: `query ${name} ${stringMatch(sm)}`, got: v === null ? 'none' : JSON.stringify(v), ok: test({ query: { [name]: sm } }) })
  }
  return checks
}

function stringMatch(m: StringMatch): string {
  if (m.exact !== undefined) return `exact ${JSON.stringify(m.exact)}`
  if (m.prefix !== undefined) return `prefix ${JSON.stringify(m.prefix)}`
  return `regex ${JSON.stringify(m.regex)}`
}

/** Each backend's subset group, made by the data plane's own ServiceEndpoints (no pools, no health). */
function traceBackends(routeService: ServiceSettings, rule: RuleSettings, services: ReadonlyMap<string, ServiceSettings>): BackendTrace[] {
  const total = rule.backends.reduce((n, b) => n + b.weight, 0)
  return rule.backends.map((b) => {
    const settings = (b.service !== undefined ? services.get(b.service) : undefined) ?? routeService
    const set = new ServiceEndpoints(settings.name, {
      panicThresholdPercent: settings.outlierDetection.panicThresholdPercent,
      locality: { enabled: false, minHealthyPercent: settings.loadBalancer.locality.minHealthyPercent },
    })
    set.update(settings.endpoints)
    const eligible = new Set(set.group(b.subset).current(performance.now()).map((e) => e.address))
    const endpoints = settings.endpoints.map((e): EndpointTrace => {
      if (eligible.has(e.address)) return { address: e.address, labels: e.labels, eligible: true }
      const miss = Object.entries(b.subset).find(([k, v]) => e.labels[k] !== v)
      const why = miss
        ? `${miss[0]} is ${e.labels[miss[0]] === undefined ? 'not set' : JSON.stringify(e.labels[miss[0]])}, the subset wants ${JSON.stringify(miss[1])}`
        : 'a lower SRV priority has endpoints'
      return { address: e.address, labels: e.labels, eligible: false, why }
    })
    return { service: settings.name, subset: b.subset, weight: b.weight, percent: total === 0 ? 0 : Math.round((b.weight * 1000) / total) / 10, endpoints, eligible: eligible.size }
  })
}

function endpointSource(s: ServiceSettings, declaredSpec: Record<string, unknown> | undefined, registered: number): string {
  if (s.dns) return `DNS ${s.dns.srv ? `SRV ${s.dns.srv}` : `${s.dns.host}:${s.dns.port}`}, resolved by each instance (explain does not resolve it)`
  if (declaredSpec?.endpoints !== undefined) return 'the static endpoints of the Service resource'
  if (registered > 0) return `the registry (${registered} registered${declaredSpec === undefined ? '; no Service resource, so default settings' : ''})`
  return 'none: no static endpoints, no DNS and nothing registered'
}

function describeRetries(r: RetrySettings): string {
  if (r.attempts === 0) return 'none (attempts 0)'
  const parts = [
    `${r.attempts} retr${r.attempts === 1 ? 'y' : 'ies'} (at most ${r.attempts + 1} tries)`,
    `on ${r.retryOn.join(', ')}`,
    r.perTryTimeoutMs !== undefined ? `per try ${formatDuration(r.perTryTimeoutMs)}` : 'no per-try timeout',
    `budget ${Math.round(r.budget.ratio * 100)}% of requests + ${r.budget.minPerSecond}/s`,
    `backoff ${formatDuration(r.backoff.baseMs)}..${formatDuration(r.backoff.maxMs)} with jitter`,
  ]
  return parts.join('; ')
}

function describeBreaker(s: ServiceSettings): string {
  const b = s.circuitBreaker
  return b.enabled ? `opens after ${b.consecutiveFailures} consecutive failures; half-open after ${formatDuration(b.halfOpenAfterMs)}` : 'off'
}

function describeOutlier(s: ServiceSettings): string {
  const o = s.outlierDetection
  return o.enabled
    ? `ejects an endpoint after ${o.consecutive5xx} consecutive 5xx for ${formatDuration(o.baseEjectionTimeMs)} (up to ${formatDuration(o.maxEjectionTimeMs)}); at most ${o.maxEjectionPercent}% ejected; panic below ${o.panicThresholdPercent}% healthy`
    : 'off'
}

function describeBalancer(s: ServiceSettings): string {
  const lb = s.loadBalancer
  return `${lb.policy}${lb.hashOn ? ` on header ${lb.hashOn.header}` : ''}${lb.locality.enabled ? `; prefers the caller's zone while ≥ ${lb.locality.minHealthyPercent}% of it is healthy` : ''}`
}
