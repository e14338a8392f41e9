import assert from 'node:assert/strict'
import { test } from 'node:test'
import { compileAuthz, type AuthzDecision, type AuthzRequest } from '../../src/authz/index.js'
import type { AuthorizationSettings, AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from '../../src/config/types.js'

// RELIABILITY S6: the engine against a reference model written the obvious way (no compilation,
// no fast paths, no shared code), on random (policy set, request) pairs over a small alphabet
// chosen so that matches are frequent. Reproduce a failure with WEFT_AUTHZ_SEED=<seed>.

const SEED = Number(process.env.WEFT_AUTHZ_SEED ?? 20_260_427)
const POLICY_SETS = 5_000
const REQUESTS_PER_SET = 20

// ---------------------------------------------------------------------------------------------
// The reference model.

const SERVICE = 'payments'
const NAMESPACE = 'default'

function refNormalize(raw: string): string | undefined {
  let s = raw
  const abs = /^https?:\/\/([^/?#]*)(.*)$/is.exec(s)
  if (abs) {
    if (/[\\%\u0000-\u0020\u007f]/.test(abs[1]!)) return undefined
    s = abs[2]!.startsWith('/') ? abs[2]! : '/'
  }
  if (!s.startsWith('/')) return undefined
  s = s.split(/[?#]/)[0]!
  if (/[\u0000-\u001f\u007f]/.test(s)) return undefined
  let decoded = ''
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      const hex = s.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined
      const ch = String.fromCharCode(parseInt(hex, 16))
      if (ch === '\u0000') return undefined
      if (ch === '/' || ch === '\\') decoded += '/'
      else if (/^[A-Za-z0-9\-._~]$/.test(ch)) decoded += ch
      else decoded += '%' + hex.toUpperCase()
      i += 2
    } else {
      decoded += s[i] === '\\' ? '/' : s[i]
    }
  }
  const segments = decoded.split('/').slice(1)
  const stack: string[] = []
  for (let k = 0; k < segments.length; k++) {
    const seg = segments[k]!
    if (seg === '..' && segments.slice(0, k).includes('')) return undefined
    if (seg === '..') stack.pop()
    else if (seg !== '' && seg !== '.') stack.push(seg)
  }
  const trailing = segments.length > 0 && ['', '.', '..'].includes(segments[segments.length - 1]!)
  return '/' + stack.join('/') + (trailing && stack.length > 0 ? '/' : '')
}

const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase())

function refPatternMatches(pattern: string, value: string, ignoreCase = false): boolean {
  if (ignoreCase) {
    pattern = asciiLower(pattern)
    value = asciiLower(value)
  }
  if (pattern === '*') return true
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1))
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1))
  return value === pattern
}

function refAnyMatches(patterns: string[], values: string[], ignoreCase = false): boolean {
  return values.some((v) => patterns.some((p) => refPatternMatches(p, v, ignoreCase)))
}

const present = (v: string | undefined): string[] => (v === undefined ? [] : [v])

function refAttributeValues(key: string, r: AuthzRequest): string[] {
  const header = /^request\.headers\[(.+)\]$/.exec(key)
  if (header) {
    const name = header[1]!.toLowerCase()
    const raw = r.headers[name]
    let v = raw === undefined ? undefined : typeof raw === 'string' ? raw : raw.length === 0 ? undefined : raw.join(', ')
    if (v !== undefined && name === 'host') v = v.toLowerCase().replace(/:[^\]]*$/, '').replace(/\.+$/, '')
    return present(v)
  }
  if (key === 'source.principal') return present(r.principal)
  if (key === 'source.namespace') return present(r.namespace)
  if (key === 'request.auth.principal') return present(r.requestPrincipal)
  if (key === 'request.auth.audiences') return r.auth ? [...r.auth.audiences] : []
  if (key === 'request.auth.presenter') return present(r.auth?.presenter)
  if (key === 'destination.port') return [String(r.port)]
  const names = [...key.slice('request.auth.claims'.length).matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]!)
  let v: unknown = r.auth?.claims
  for (const n of names) v = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, n) ? (v as Record<string, unknown>)[n] : undefined
  if (typeof v === 'string') return names.length === 1 && (names[0] === 'scope' || names[0] === 'permission') ? v.split(' ').filter((t) => t !== '') : [v]
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string')
  return []
}

interface RefInput { r: AuthzRequest; path: string | undefined; methodValid: boolean }

function refSource(s: AuthzSource, x: RefInput): boolean {
  const fields: [string[] | undefined, string | undefined, boolean][] = [
    [s.principals, x.r.principal, false], [s.notPrincipals, x.r.principal, true],
    [s.namespaces, x.r.namespace, false], [s.notNamespaces, x.r.namespace, true],
    [s.requestPrincipals, x.r.requestPrincipal, false], [s.notRequestPrincipals, x.r.requestPrincipal, true],
  ]
  return fields.every(([patterns, value, negative]) => patterns === undefined || refAnyMatches(patterns, present(value)) !== negative)
}

function refOperation(o: AuthzOperation, x: RefInput, ignoreCase: boolean): boolean {
  if ((o.methods || o.notMethods) && !x.methodValid) return false
  if ((o.paths || o.notPaths) && x.path === undefined) return false
  if (o.methods && !o.methods.includes(x.r.method)) return false
  if (o.notMethods && o.notMethods.includes(x.r.method)) return false
  if (o.paths && !refAnyMatches(o.paths, [x.path!], ignoreCase)) return false
  if (o.notPaths && refAnyMatches(o.notPaths, [x.path!], ignoreCase)) return false
  if (o.ports && !o.ports.includes(x.r.port)) return false
  if (o.notPorts && o.notPorts.includes(x.r.port)) return false
  return true
}

function refCondition(c: AuthzCondition, x: RefInput): boolean {
  const values = refAttributeValues(c.key, x.r)
  if (c.values && !refAnyMatches(c.values, values)) return false
  if (c.notValues && refAnyMatches(c.notValues, values)) return false
  return true
}

function refRule(rule: AuthzRule, x: RefInput, ignoreCase: boolean): boolean {
  return (rule.from.length === 0 || rule.from.some((s) => refSource(s, x)))
    && (rule.to.length === 0 || rule.to.some((o) => refOperation(o, x, ignoreCase)))
    && rule.when.every((c) => refCondition(c, x))
}

function refFirstRule(p: AuthorizationSettings, x: RefInput): number {
  return p.rules.findIndex((rule) => refRule(rule, x, p.ignorePathCase === true))
}

type RefDecision = { allowed: boolean; reason: string; policy?: string; rule?: number; audited: string[] }

function refDecide(policies: AuthorizationSettings[], defaultAuthorization: 'ALLOW' | 'DENY', r: AuthzRequest): RefDecision {
  const applicable = policies.filter((p) => p.namespace === NAMESPACE && (p.service === undefined || p.service === SERVICE)).sort((a, b) => a.order - b.order)
  const x: RefInput = { r, path: refNormalize(r.path), methodValid: /^[A-Z][A-Z0-9_-]*$/.test(r.method) }
  const audited = applicable.filter((p) => p.action === 'AUDIT' && refFirstRule(p, x) >= 0).map((p) => p.name)
  const enforcing = applicable.filter((p) => p.action !== 'AUDIT')
  const reads = (field: 'paths' | 'methods') => enforcing.some((p) => p.rules.some((rule) => rule.to.some((o) =>
    field === 'paths' ? o.paths || o.notPaths : o.methods || o.notMethods)))
  if (x.path === undefined && reads('paths')) return { allowed: false, reason: 'path-invalid', audited }
  if (!x.methodValid && reads('methods')) return { allowed: false, reason: 'method-invalid', audited }
  for (const p of enforcing.filter((q) => q.action === 'DENY')) {
    const rule = refFirstRule(p, x)
    if (rule >= 0) return { allowed: false, reason: 'deny-matched', policy: p.name, rule, audited }
  }
  const allows = enforcing.filter((q) => q.action === 'ALLOW')
  if (allows.length === 0) {
    return defaultAuthorization === 'DENY' ? { allowed: false, reason: 'default-deny', audited } : { allowed: true, reason: 'no-policy', audited }
  }
  for (const p of allows) {
    const rule = refFirstRule(p, x)
    if (rule >= 0) return { allowed: true, reason: 'allow-matched', policy: p.name, rule, audited }
  }
  return { allowed: false, reason: 'no-allow-matched', policy: allows.map((p) => p.name).join(','), audited }
}

// ---------------------------------------------------------------------------------------------
// The generator.

function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32
  }
}

const TD = 'spiffe://weft.local'
const IDS = [`${TD}/ns/default/sa/a.b`, `${TD}/ns/default/sa/a-b`, `${TD}/ns/default/sa/aXb`, `${TD}/ns/shop/sa/cart`, `${TD}/ns/default/sa/web`]
const POOLS = {
  principal: [...IDS, `${TD}/ns/default/*`, '*/sa/a.b', '*/sa/cart', '*', 'spiffe://*', `${TD}/ns/default/sa/a*`],
  namespace: ['default', 'shop', 'sh*', '*op', '*', 'de*'],
  requestPrincipal: ['https://i.example/alice', 'https://i.example/bob', 'https://i.example/*', '*/alice', '*'],
  method: ['GET', 'POST', 'DELETE'],
  path: ['/admin', '/admin/*', '/public/*', '*.b', '/a.b', '/', '*', '/ADMIN', '/x/*', '/Admin/*', '/public'],
  port: [8080, 9090],
}
const WHEN: [string, string[]][] = [
  ['request.headers[x-tenant]', ['acme', 'corp-*', '*', 'evil', 'acme, evil']],
  ['request.headers[host]', ['payments.default', 'pay*', '*.default']],
  ['source.principal', POOLS.principal],
  ['source.namespace', POOLS.namespace],
  ['request.auth.principal', POOLS.requestPrincipal],
  ['request.auth.audiences', ['payments', 'other', '*']],
  ['request.auth.presenter', ['web-*', 'cli']],
  ['request.auth.claims[scope]', ['read', 'write', '*', 're*', '*ite', '*d write']],
  ['request.auth.claims[group]', ['admins', 'users', '*']],
  ['request.auth.claims[realm][roles]', ['ops', 'dev']],
  ['destination.port', ['8080', '9090']],
]

function generate(seed: number) {
  const r = random(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
  const chance = (p: number) => r() < p
  const some = <T>(xs: readonly T[], max = 2): T[] => Array.from({ length: 1 + Math.floor(r() * max) }, () => pick(xs))

  function source(): AuthzSource {
    const s: AuthzSource = {}
    const fields = [['principals', 'principal'], ['notPrincipals', 'principal'], ['namespaces', 'namespace'], ['notNamespaces', 'namespace'],
      ['requestPrincipals', 'requestPrincipal'], ['notRequestPrincipals', 'requestPrincipal']] as const
    for (const [field, pool] of some(fields)) s[field] = some(POOLS[pool])
    return s
  }
  function operation(): AuthzOperation {
    const o: AuthzOperation = {}
    for (const field of some(['methods', 'notMethods', 'paths', 'notPaths', 'ports', 'notPorts'] as const)) {
      if (field === 'ports' || field === 'notPorts') o[field] = some(POOLS.port)
      else if (field === 'methods' || field === 'notMethods') o[field] = some(POOLS.method)
      else o[field] = some(POOLS.path)
    }
    return o
  }
  function condition(): AuthzCondition {
    const [key, pool] = pick(WHEN)
    const c: AuthzCondition = { key }
    const which = r()
    if (which < 0.6) c.values = some(pool)
    else if (which < 0.85) c.notValues = some(pool)
    else {
      c.values = some(pool)
      c.notValues = some(pool)
    }
    return c
  }
  function rule(): AuthzRule {
    const count = () => (chance(0.4) ? 0 : 1 + Math.floor(r() * 2))
    return { from: Array.from({ length: count() }, source), to: Array.from({ length: count() }, operation), when: Array.from({ length: chance(0.5) ? 0 : 1 + Math.floor(r() * 2) }, condition) }
  }
  function policySet(): AuthorizationSettings[] {
    const n = Math.floor(r() * 5)
    return Array.from({ length: n }, (_, i): AuthorizationSettings => ({
      name: `p${i}`,
      namespace: chance(0.85) ? 'default' : 'shop',
      ...(chance(0.5) ? {} : { service: pick(['payments', 'payments', 'ledger']) }),
      action: pick(['ALLOW', 'ALLOW', 'DENY', 'DENY', 'AUDIT'] as const),
      rules: chance(0.08) ? [] : Array.from({ length: 1 + Math.floor(r() * 3) }, rule),
      order: Math.floor(r() * 10),
      ...(chance(0.2) ? { ignorePathCase: true } : {}),
    }))
  }

  const PATH_PIECES = ['admin', 'public', 'a.b', 'x', 'ADMIN', 'Admin', '..', '.', '%2e%2e', '%2F', '%61dmin', '', 'y.b', '%41DMIN', '%zz']
  function path(): string {
    if (chance(0.3)) return pick(['/admin', '/admin/x', '/public/y', '/a.b', '/', '/x/a.b', '/ADMIN', '/public'])
    let s = ''
    for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) s += pick(['/', '/', '/', '\\']) + pick(PATH_PIECES)
    if (chance(0.1)) s += pick(['?q=1', '#f', '?/admin'])
    if (chance(0.03)) s = `http://payments${s}`
    return s
  }
  function request(): AuthzRequest {
    const principal = chance(0.8) ? pick(IDS) : undefined
    const jwt = chance(0.6)
    const headers: Record<string, string | string[] | undefined> = {}
    if (chance(0.7)) headers['x-tenant'] = pick(['acme', 'corp-1', 'evil', 'ACME']) as string
    if (chance(0.1)) headers['x-tenant'] = pick([['acme', 'evil'], ['acme'], []])
    if (chance(0.7)) headers.host = pick(['payments.default', 'PAYMENTS.default:80', 'payments.default.', 'other.shop'])
    const claims: Record<string, unknown> = {}
    if (chance(0.7)) claims.scope = pick(['read write', 'read', 'write', ['read'], ' re ', 1])
    if (chance(0.6)) claims.group = pick(['admins', ['users', 'admins'], 'admins users', 1, null])
    if (chance(0.4)) claims.realm = pick([{ roles: ['ops'] }, { roles: 'dev' }, 'ops', null])
    return {
      principal,
      namespace: principal?.split('/')[4],
      ...(jwt ? {
        requestPrincipal: pick(['https://i.example/alice', 'https://i.example/bob', 'https://j.example/alice']),
        auth: { audiences: pick([['payments'], ['other'], [], ['payments', 'other']]), ...(chance(0.5) ? { presenter: pick(['web-app', 'cli']) } : {}), claims },
      } : {}),
      method: chance(0.03) ? 'get' : pick(['GET', 'POST', 'DELETE', 'PUT']),
      path: path(),
      port: pick([8080, 9090, 8443]),
      headers,
    }
  }
  return { policySet, request, defaultAuthorization: () => (chance(0.3) ? 'DENY' as const : 'ALLOW' as const) }
}

// ---------------------------------------------------------------------------------------------

function comparable(d: AuthzDecision): RefDecision {
  return { allowed: d.allowed, reason: d.reason, ...(d.policy !== undefined ? { policy: d.policy } : {}), ...(d.rule !== undefined ? { rule: d.rule } : {}), audited: [...d.audited] }
}

test(`S6 differential: engine = reference model on ${(POLICY_SETS * REQUESTS_PER_SET).toLocaleString('en')} random (policy set, request) pairs, 0 divergences`, () => {
  const gen = generate(SEED)
  const reasons = new Map<string, number>()
  let auditedCount = 0
  let explained = 0
  for (let set = 0; set < POLICY_SETS; set++) {
    const policies = gen.policySet()
    const defaultAuthorization = gen.defaultAuthorization()
    const engine = compileAuthz(policies, { service: SERVICE, namespace: NAMESPACE, defaultAuthorization })
    for (let i = 0; i < REQUESTS_PER_SET; i++) {
      const r = gen.request()
      const want = refDecide(policies, defaultAuthorization, r)
      const got: RefDecision = engine ? comparable(engine.evaluate(r)) : { allowed: true, reason: 'no-policy', audited: [] }
      if (!engine) assert.deepEqual(want, got, 'compileAuthz returned undefined but the model found something that applies')
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        assert.fail(`divergence (seed ${SEED}, set ${set}, request ${i}; rerun with WEFT_AUTHZ_SEED=${SEED})\n` +
          `engine:    ${JSON.stringify(got)}\nreference: ${JSON.stringify(want)}\n` +
          `defaultAuthorization: ${defaultAuthorization}\npolicies: ${JSON.stringify(policies)}\nrequest: ${JSON.stringify(r)}`)
      }
      reasons.set(want.reason, (reasons.get(want.reason) ?? 0) + 1)
      if (want.audited.length > 0) auditedCount++
      // explain() must agree with evaluate() and with the model, rule by rule.
      if (engine && i === 0) {
        const x = engine.explain(r)
        assert.deepEqual(comparable(x.decision), want, `explain decision, seed ${SEED} set ${set}`)
        const ri = { r, path: refNormalize(r.path), methodValid: /^[A-Z][A-Z0-9_-]*$/.test(r.method) }
        for (const pe of x.policies.filter((p) => p.applies)) {
          const p = policies.find((q) => q.name === pe.name)!
          const wantRules = p.rules.map((rule) => refRule(rule, ri, p.ignorePathCase === true))
          assert.deepEqual(pe.rules.map((e) => e.matched), wantRules, `explain rules of ${p.name}, seed ${SEED} set ${set}`)
          for (const e of pe.rules) assert.equal(e.matched, e.why === undefined)
        }
        explained++
      }
    }
  }
  // The generator must exercise every outcome often, or "0 divergences" says little.
  const total = POLICY_SETS * REQUESTS_PER_SET
  for (const reason of ['deny-matched', 'allow-matched', 'no-allow-matched', 'no-policy', 'default-deny', 'path-invalid', 'method-invalid']) {
    const n = reasons.get(reason) ?? 0
    assert.ok(n >= total * (reason === 'method-invalid' ? 0.001 : 0.01), `${reason}: only ${n} of ${total} (seed ${SEED})`)
  }
  assert.ok(auditedCount >= total * 0.02, `audited: ${auditedCount}`)
  assert.ok(explained > POLICY_SETS / 2)
})
