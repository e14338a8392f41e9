import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AuthzEngine, compileAuthz, type AuthzRequest } from '../../src/authz/index.js'
import { loadText } from '../../src/config/load.js'
import type { AuthorizationSettings, AuthzRule } from '../../src/config/types.js'
import { validatePolicy } from '../../src/config/validate.js'
import { isWeftError } from '../../src/errors/index.js'

const TD = 'spiffe://weft.local'
const CHECKOUT = `${TD}/ns/default/sa/checkout`
const SVC = { service: 'payments', namespace: 'default' }

let order = 0
function policy(name: string, action: AuthorizationSettings['action'], rules: Partial<AuthzRule>[] | undefined, extra: Partial<AuthorizationSettings> = {}): AuthorizationSettings {
  return { name, namespace: 'default', action, rules: (rules ?? []).map((r) => ({ from: [], to: [], when: [], ...r })), order: order++, ...extra }
}
function req(over: Partial<AuthzRequest> = {}): AuthzRequest {
  return { principal: CHECKOUT, namespace: 'default', method: 'GET', path: '/charge', port: 8080, headers: {}, ...over }
}
function engine(policies: AuthorizationSettings[], opts: Partial<typeof SVC & { defaultAuthorization: 'ALLOW' | 'DENY' }> = {}): AuthzEngine {
  return new AuthzEngine(policies, { ...SVC, ...opts })
}
const allowed = (e: AuthzEngine, r: Partial<AuthzRequest> = {}) => e.evaluate(req(r)).allowed

const denyAdmin = () => policy('deny-admin', 'DENY', [{ to: [{ paths: ['/admin', '/admin/*'] }] }])
const allowCheckout = () => policy('allow-checkout', 'ALLOW', [{ from: [{ principals: [CHECKOUT] }] }])

test('no policy: compileAuthz returns undefined (the layer is skipped); the engine itself says allowed, no-policy', () => {
  assert.equal(compileAuthz([], SVC), undefined)
  assert.equal(compileAuthz([policy('other', 'DENY', [{}], { namespace: 'shop' })], SVC), undefined)
  assert.deepEqual(engine([]).evaluate(req()), { allowed: true, reason: 'no-policy', audited: [] })
})

test('DENY wins over ALLOW', () => {
  const e = engine([allowCheckout(), denyAdmin()])
  assert.deepEqual(e.evaluate(req({ path: '/admin/users' })), { allowed: false, policy: 'deny-admin', rule: 0, reason: 'deny-matched', audited: [] })
  assert.deepEqual(e.evaluate(req()), { allowed: true, policy: 'allow-checkout', rule: 0, reason: 'allow-matched', audited: [] })
})

test('an ALLOW policy present: a request no ALLOW rule matches is denied, naming every ALLOW policy', () => {
  const e = engine([allowCheckout(), policy('allow-web', 'ALLOW', [{ from: [{ principals: [`${TD}/ns/default/sa/web`] }] }])])
  const d = e.evaluate(req({ principal: `${TD}/ns/default/sa/other` }))
  assert.deepEqual(d, { allowed: false, policy: 'allow-checkout,allow-web', reason: 'no-allow-matched', audited: [] })
})

test('only DENY policies that do not match: allowed (no ALLOW policy, default ALLOW)', () => {
  assert.deepEqual(engine([denyAdmin()]).evaluate(req()), { allowed: true, reason: 'no-policy', audited: [] })
})

test('defaultAuthorization DENY: a service with no ALLOW policy denies everything; an ALLOW still allows what it matches', () => {
  const none = compileAuthz([], { ...SVC, defaultAuthorization: 'DENY' })!
  assert.ok(none, 'an engine even with no policy')
  assert.deepEqual(none.evaluate(req()), { allowed: false, reason: 'default-deny', audited: [] })
  assert.equal(engine([denyAdmin()], { defaultAuthorization: 'DENY' }).evaluate(req()).reason, 'default-deny')
  const e = engine([allowCheckout()], { defaultAuthorization: 'DENY' })
  assert.equal(e.evaluate(req()).reason, 'allow-matched')
  assert.equal(e.evaluate(req({ principal: undefined })).reason, 'no-allow-matched')
})

test('AUDIT never changes the decision and is reported in audited (also when a DENY decides)', () => {
  const audit = policy('audit-admin', 'AUDIT', [{ to: [{ paths: ['/admin/*'] }] }])
  assert.ok(compileAuthz([audit], SVC), 'AUDIT alone makes an engine')
  assert.deepEqual(engine([audit]).evaluate(req({ path: '/admin/x' })), { allowed: true, reason: 'no-policy', audited: ['audit-admin'] })
  assert.deepEqual(engine([audit]).evaluate(req({ path: '/public' })).audited, [])
  const all = engine([audit, policy('audit-all', 'AUDIT', [{}]), denyAdmin()])
  assert.deepEqual(all.evaluate(req({ path: '/admin/x' })), { allowed: false, policy: 'deny-admin', rule: 0, reason: 'deny-matched', audited: ['audit-admin', 'audit-all'] })
})

test('a policy with no rules matches nothing; a rule {} matches everything', () => {
  assert.equal(allowed(engine([policy('allow-nothing', 'ALLOW', undefined)])), false)
  assert.equal(allowed(engine([policy('allow-all', 'ALLOW', [{}])]), { principal: undefined, path: '/anything' }), true)
  assert.equal(allowed(engine([policy('deny-nothing', 'DENY', [])])), true)
  assert.equal(engine([policy('deny-all', 'DENY', [{}])]).evaluate(req()).reason, 'deny-matched')
})

test('rule parts: from any entry, to any entry, when every condition; inside an entry every field', () => {
  const e = engine([policy('a', 'ALLOW', [{
    from: [{ principals: [CHECKOUT] }, { namespaces: ['shop'] }],
    to: [{ methods: ['POST'], paths: ['/charge'] }, { methods: ['GET'], paths: ['/status'] }],
    when: [{ key: 'request.headers[x-a]', values: ['1'] }, { key: 'request.headers[x-b]', values: ['2'] }],
  }])])
  const h = { 'x-a': '1', 'x-b': '2' }
  assert.equal(allowed(e, { method: 'POST', headers: h }), true)
  assert.equal(allowed(e, { principal: `${TD}/ns/shop/sa/cart`, namespace: 'shop', method: 'GET', path: '/status', headers: h }), true)
  assert.equal(allowed(e, { method: 'GET', headers: h }), false, 'GET /charge is neither to entry')
  assert.equal(allowed(e, { method: 'POST', headers: { 'x-a': '1' } }), false, 'every when condition')
  assert.equal(allowed(e, { principal: `${TD}/ns/web/sa/x`, namespace: 'web', method: 'POST', headers: h }), false)
})

test('the first matching DENY in config order decides, with its rule index', () => {
  const e = engine([
    policy('deny-b', 'DENY', [{ to: [{ paths: ['/x'] }] }, { to: [{ paths: ['/admin'] }] }], { order: 2 }),
    policy('deny-a', 'DENY', [{ to: [{ paths: ['/admin'] }] }], { order: 1 }),
  ])
  assert.deepEqual([e.evaluate(req({ path: '/admin' })).policy, e.evaluate(req({ path: '/admin' })).rule], ['deny-a', 0])
  assert.deepEqual([e.evaluate(req({ path: '/x' })).policy, e.evaluate(req({ path: '/x' })).rule], ['deny-b', 0])
  assert.deepEqual(e.policies, ['deny-a', 'deny-b'])
})

test('principals: exact and glob; an absent principal never matches principals (even "*") but does match notPrincipals', () => {
  const allowP = (...p: string[]) => engine([policy('a', 'ALLOW', [{ from: [{ principals: p }] }])])
  assert.equal(allowed(allowP(CHECKOUT)), true)
  assert.equal(allowed(allowP(`${TD}/ns/default/*`), { principal: `${TD}/ns/default/sa/web` }), true)
  assert.equal(allowed(allowP(`${TD}/ns/default/*`), { principal: `${TD}/ns/other/sa/web` }), false)
  assert.equal(allowed(allowP('*/sa/checkout'), { principal: `${TD}/ns/shop/sa/checkout` }), true)
  assert.equal(allowed(allowP('*')), true)
  assert.equal(allowed(allowP('*'), { principal: undefined }), false, '"*" requires an identity')
  const denyNot = engine([policy('d', 'DENY', [{ from: [{ notPrincipals: [CHECKOUT] }] }])])
  assert.equal(allowed(denyNot), true)
  assert.equal(allowed(denyNot, { principal: undefined }), false, 'no identity is "not checkout"')
})

test('S6: identities match exactly: a policy for a.b never matches a-b or aXb (no regex dot)', () => {
  const id = (svc: string) => `${TD}/ns/default/sa/${svc}`
  const e = engine([policy('a', 'ALLOW', [{ from: [{ principals: [id('a.b')], namespaces: ['default'] }] }])])
  assert.equal(allowed(e, { principal: id('a.b') }), true)
  for (const other of ['a-b', 'aXb', 'a.bc', 'xa.b', 'a.b/x', 'A.B']) assert.equal(allowed(e, { principal: id(other) }), false, other)
  const ns = engine([policy('n', 'ALLOW', [{ from: [{ namespaces: ['team.a'] }] }])])
  assert.equal(allowed(ns, { namespace: 'team.a' }), true)
  for (const other of ['team-a', 'teamXa', 'team.ab', undefined]) assert.equal(allowed(ns, { namespace: other }), false, String(other))
})

test('namespaces and notNamespaces', () => {
  const e = engine([policy('d', 'DENY', [{ from: [{ namespaces: ['test-*'] }] }, { from: [{ notNamespaces: ['default', 'shop'] }] }])])
  assert.equal(e.evaluate(req({ namespace: 'test-1' })).rule, 0)
  assert.equal(e.evaluate(req({ namespace: 'web' })).rule, 1)
  assert.equal(e.evaluate(req({ namespace: undefined })).rule, 1, 'no peer: not in default or shop')
  assert.equal(allowed(e, { namespace: 'shop' }), true)
})

test('requestPrincipals ["*"] requires a verified JWT (J11)', () => {
  const e = engine([policy('jwt', 'ALLOW', [{ from: [{ requestPrincipals: ['*'] }] }])])
  assert.equal(allowed(e), false)
  assert.equal(allowed(e, { requestPrincipal: 'https://issuer.example/alice' }), true)
  const issuer = engine([policy('jwt', 'ALLOW', [{ from: [{ requestPrincipals: ['https://issuer.example/*'] }] }])])
  assert.equal(allowed(issuer, { requestPrincipal: 'https://issuer.example/alice' }), true)
  assert.equal(allowed(issuer, { requestPrincipal: 'https://issuer.example.evil/alice' }), false)
  const notJwt = engine([policy('d', 'DENY', [{ from: [{ notRequestPrincipals: ['*'] }] }])])
  assert.equal(allowed(notJwt), false, 'DENY notRequestPrincipals ["*"]: deny requests without a JWT')
  assert.equal(allowed(notJwt, { requestPrincipal: 'https://i/x' }), true)
})

test('when on JWT claims: string claims whole, list claims any item, scope/permission split on spaces, nested [a][b]', () => {
  const when = (key: string, values: string[]) => engine([policy('a', 'ALLOW', [{ when: [{ key, values }] }])])
  const auth = (claims: Record<string, unknown>) => ({ requestPrincipal: 'https://i/x', auth: { audiences: ['payments'], claims } })
  const group = when('request.auth.claims[group]', ['admins'])
  assert.equal(allowed(group, auth({ group: 'admins' })), true)
  assert.equal(allowed(group, auth({ group: 'admins users' })), false, 'only scope/permission are space-separated')
  assert.equal(allowed(group, auth({ group: ['users', 'admins'] })), true)
  assert.equal(allowed(group, auth({ group: [['admins']] })), false)
  assert.equal(allowed(group, auth({ group: 1 })), false)
  assert.equal(allowed(group, {}), false, 'no JWT')
  const scope = when('request.auth.claims[scope]', ['payments:read'])
  assert.equal(allowed(scope, auth({ scope: 'openid  payments:read email' })), true)
  assert.equal(allowed(scope, auth({ scope: 'payments:readonly' })), false)
  assert.equal(allowed(scope, auth({ scope: ['payments:read'] })), true)
  const nested = when('request.auth.claims[realm_access][roles]', ['ops'])
  assert.equal(allowed(nested, auth({ realm_access: { roles: ['dev', 'ops'] } })), true)
  assert.equal(allowed(nested, auth({ realm_access: 'ops' })), false)
  const proto = when('request.auth.claims[__proto__][x]', ['*'])
  assert.equal(allowed(proto, auth({})), false, 'own properties only')
  assert.equal(allowed(when('request.auth.claims[toString]', ['*']), auth({})), false)
  const aud = when('request.auth.audiences', ['payments'])
  assert.equal(allowed(aud, auth({})), true)
  const azp = when('request.auth.presenter', ['web-*'])
  assert.equal(allowed(azp, { auth: { audiences: [], presenter: 'web-app', claims: {} } }), true)
  assert.equal(allowed(azp, auth({})), false)
})

test('when on headers: values, notValues, absent headers, repeated headers joined, Host normalised', () => {
  const tenant = engine([policy('a', 'ALLOW', [{ when: [{ key: 'request.headers[x-tenant]', values: ['acme', 'corp-*'] }] }])])
  assert.equal(allowed(tenant, { headers: { 'x-tenant': 'acme' } }), true)
  assert.equal(allowed(tenant, { headers: { 'x-tenant': 'corp-1' } }), true)
  assert.equal(allowed(tenant, { headers: { 'x-tenant': 'ACME' } }), false, 'values are case-sensitive')
  assert.equal(allowed(tenant, { headers: {} }), false)
  assert.equal(allowed(tenant, { headers: { 'x-tenant': ['acme'] } }), true)
  assert.equal(allowed(tenant, { headers: { 'x-tenant': ['acme', 'evil'] } }), false, '"acme, evil" is not "acme"')
  const notDev = engine([policy('d', 'DENY', [{ when: [{ key: 'request.headers[x-env]', notValues: ['prod'] }] }])])
  assert.equal(allowed(notDev, { headers: { 'x-env': 'prod' } }), true)
  assert.equal(allowed(notDev, { headers: {} }), false, 'an absent header is "not prod"')
  assert.equal(allowed(notDev, { headers: { 'x-env': ['prod', 'dev'] } }), false)
  const present = engine([policy('a', 'ALLOW', [{ when: [{ key: 'request.headers[x-token]', values: ['*'] }] }])])
  assert.equal(allowed(present, { headers: { 'x-token': '' } }), true, '"*" is presence')
  for (const name of ['__proto__', 'constructor', 'tostring']) {
    const proto = engine([policy('a', 'ALLOW', [{ when: [{ key: `request.headers[${name}]`, values: ['*'] }] }])])
    assert.equal(allowed(proto, { headers: {} }), false, `${name}: a prototype member is not a header`)
    assert.equal(allowed(proto, { headers: { [name]: 'x' } }), true, name)
  }
  const host = engine([policy('d', 'DENY', [{ when: [{ key: 'request.headers[host]', values: ['payments.default'] }] }])])
  for (const h of ['payments.default', 'PAYMENTS.Default', 'payments.default.', 'payments.default:8080', 'Payments.Default.:80']) {
    assert.equal(allowed(host, { headers: { host: h } }), false, h)
  }
  assert.equal(allowed(host, { headers: { host: 'payments.other' } }), true)
})

test('when on source.principal, source.namespace, request.auth.principal and destination.port', () => {
  const e = engine([policy('a', 'ALLOW', [{ when: [
    { key: 'source.principal', values: [`${TD}/ns/default/*`] },
    { key: 'source.namespace', notValues: ['test'] },
    { key: 'request.auth.principal', values: ['https://i/*'] },
    { key: 'destination.port', values: ['8080', '8443'] },
  ] }])])
  const ok = { requestPrincipal: 'https://i/alice' }
  assert.equal(allowed(e, ok), true)
  assert.equal(allowed(e, { ...ok, port: 8443 }), true)
  assert.equal(allowed(e, { ...ok, port: 9090 }), false)
  assert.equal(allowed(e, { ...ok, namespace: 'test' }), false)
  assert.equal(allowed(e, { ...ok, principal: undefined }), false)
  assert.equal(allowed(e, {}), false)
})

test('ports and notPorts', () => {
  const e = engine([policy('d', 'DENY', [{ to: [{ ports: [9090] }] }]), policy('a', 'ALLOW', [{ to: [{ notPorts: [9091] }] }])])
  assert.equal(allowed(e, { port: 9090 }), false)
  assert.equal(allowed(e, { port: 9091 }), false)
  assert.equal(allowed(e, { port: 8080 }), true)
})

test('methods are exact and case-sensitive; a method that is not an uppercase token is refused when a policy reads methods', () => {
  const e = engine([policy('d', 'DENY', [{ to: [{ methods: ['DELETE'] }] }])])
  assert.equal(allowed(e, { method: 'DELETE' }), false)
  assert.equal(allowed(e, { method: 'GET' }), true)
  assert.deepEqual(e.evaluate(req({ method: 'delete' })), { allowed: false, reason: 'method-invalid', audited: [] })
  assert.equal(allowed(engine([denyAdmin()]), { method: 'delete' }), true, 'no policy reads methods: not checked')
  const notGet = engine([policy('a', 'ALLOW', [{ to: [{ notMethods: ['GET', 'HEAD'] }] }])])
  assert.equal(allowed(notGet, { method: 'POST' }), true)
  assert.equal(allowed(notGet, { method: 'HEAD' }), false)
})

test('paths and notPaths are matched on the normalised path', () => {
  const e = engine([denyAdmin(), policy('a', 'ALLOW', [{ to: [{ notPaths: ['/internal/*'] }] }])])
  assert.equal(allowed(e, { path: '/charge' }), true)
  assert.equal(allowed(e, { path: '/internal/x' }), false)
  assert.equal(allowed(e, { path: '/public/..//internal/x' }), false, 'refused as ambiguous')
  assert.equal(allowed(e, { path: '/x/../internal/x' }), false)
  assert.equal(e.evaluate(req({ path: '/%2e%2e/admin' })).policy, 'deny-admin')
  assert.deepEqual(e.evaluate(req({ path: '/a%zz' })), { allowed: false, reason: 'path-invalid', audited: [] })
  const suffix = engine([policy('d', 'DENY', [{ to: [{ paths: ['*.env'] }] }])])
  assert.equal(allowed(suffix, { path: '/app/.env' }), false)
  assert.equal(allowed(suffix, { path: '/app/.%65nv' }), false)
  assert.equal(allowed(suffix, { path: '/app/.envx' }), true)
})

test('a refused path denies only when an enforcing (DENY/ALLOW) policy reads paths; AUDIT path rules then just do not match', () => {
  const noPaths = engine([policy('d', 'DENY', [{ from: [{ namespaces: ['test'] }] }])])
  assert.equal(noPaths.evaluate(req({ path: '/a%zz' })).reason, 'no-policy')
  const auditOnly = engine([policy('audit', 'AUDIT', [{ to: [{ notPaths: ['/health'] }] }])])
  assert.deepEqual(auditOnly.evaluate(req({ path: '/a%zz' })), { allowed: true, reason: 'no-policy', audited: [] })
  assert.deepEqual(auditOnly.evaluate(req({ path: '/a' })).audited, ['audit'])
})

test('/ADMIN is another path unless the policy sets ignorePathCase', () => {
  assert.equal(allowed(engine([denyAdmin()]), { path: '/ADMIN' }), true)
  const folded = engine([policy('deny-admin', 'DENY', [{ to: [{ paths: ['/Admin', '/admin/*', '*.PHP'] }] }], { ignorePathCase: true })])
  for (const p of ['/ADMIN', '/admin', '/aDmIn/x', '/%41dmin', '/x/y.php', '/x/y.Php']) assert.equal(allowed(folded, { path: p }), false, p)
  assert.equal(allowed(folded, { path: '/administrator' }), true)
})

test('selection: namespace must equal; no service means the whole namespace', () => {
  const e = engine([
    policy('ns-wide', 'DENY', [{ to: [{ paths: ['/a'] }] }]),
    policy('for-ledger', 'DENY', [{}], { service: 'ledger' }),
    policy('other-ns', 'DENY', [{}], { namespace: 'shop' }),
    policy('for-payments', 'DENY', [{ to: [{ paths: ['/b'] }] }], { service: 'payments' }),
  ])
  assert.deepEqual(e.policies, ['ns-wide', 'for-payments'])
  assert.equal(allowed(e, { path: '/c' }), true)
  assert.equal(e.evaluate(req({ path: '/b' })).policy, 'for-payments')
})

test('decisions without audit matches are shared frozen objects (no allocation per request)', () => {
  const e = engine([allowCheckout(), denyAdmin()])
  const a = e.evaluate(req())
  assert.equal(e.evaluate(req()), a)
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.audited))
})

test('policies built in code are checked like validated ones: compile throws WEFT_ERR_POLICY_INVALID', () => {
  const bad: [string, Partial<AuthzRule>][] = [
    ['regex-like pattern', { to: [{ paths: ['^/admin/.*$'] }] }],
    ['star in the middle', { from: [{ principals: [`${TD}/ns/*/sa/x`] }] }],
    ['unknown when key', { when: [{ key: 'request.time', values: ['x'] }] }],
    ['unknown field', { to: [{ hosts: ['x'] } as never] }],
    ['empty list', { from: [{ principals: [] }] }],
    ['empty entry', { to: [{}] }],
    ['no values', { when: [{ key: 'source.namespace' }] }],
    ['bad port', { to: [{ ports: [70000] }] }],
    ['un-normalised path', { to: [{ paths: ['//admin'] }] }],
  ]
  for (const [what, rule] of bad) {
    assert.throws(() => compileAuthz([policy('p', 'DENY', [rule])], SVC), (err) => isWeftError(err, 'WEFT_ERR_POLICY_INVALID') && /AuthorizationPolicy default\/p spec\.rules\[0\]/.test(err.message), what)
  }
  assert.throws(() => compileAuthz([policy('p', 'CUSTOM' as never, [])], SVC), /unknown action/)
  // A broken policy for another service is not compiled here (it is another instance's problem).
  assert.equal(compileAuthz([policy('p', 'DENY', [{ to: [{}] }], { service: 'ledger' })], SVC), undefined)
})

test('explain: per policy in order, whether it applies and which rule matched or why not', () => {
  const e = engine([
    allowCheckout(),
    denyAdmin(),
    policy('for-ledger', 'ALLOW', [{}], { service: 'ledger' }),
    policy('other-ns', 'ALLOW', [{}], { namespace: 'shop' }),
    policy('jwt-readers', 'ALLOW', [{ from: [{ requestPrincipals: ['*'] }], when: [{ key: 'request.auth.claims[scope]', values: ['read'] }] }]),
  ])
  const x = e.explain(req({ principal: `${TD}/ns/default/sa/web`, path: '/public/../admin/x?y' }))
  assert.deepEqual(x.decision, { allowed: false, policy: 'deny-admin', rule: 0, reason: 'deny-matched', audited: [] })
  assert.equal(x.path, '/admin/x')
  assert.deepEqual(x.policies, [
    { name: 'allow-checkout', namespace: 'default', action: 'ALLOW', applies: true, rules: [
      { index: 0, matched: false, why: `from[0].principals: "${TD}/ns/default/sa/web" matches none of ["${CHECKOUT}"]` }] },
    { name: 'deny-admin', namespace: 'default', action: 'DENY', applies: true, matchedRule: 0, rules: [{ index: 0, matched: true }] },
    { name: 'for-ledger', namespace: 'default', service: 'ledger', action: 'ALLOW', applies: false, notApplied: 'it selects service "ledger", not "payments"', rules: [] },
    { name: 'other-ns', namespace: 'shop', action: 'ALLOW', applies: false, notApplied: 'it is in namespace "shop", not "default"', rules: [] },
    { name: 'jwt-readers', namespace: 'default', action: 'ALLOW', applies: true, rules: [
      { index: 0, matched: false, why: 'from[0].requestPrincipals: no verified JWT' }] },
  ])
  const anon = e.explain(req({ principal: undefined, path: '/x' }))
  assert.equal(anon.decision.reason, 'no-allow-matched')
  assert.equal(anon.policies[0]!.rules[0]!.why, 'from[0].principals: no peer identity (the connection is not mTLS)')
  const jwt = e.explain(req({ requestPrincipal: 'https://i/a', auth: { audiences: [], claims: { scope: 'write' } } }))
  assert.equal(jwt.policies[4]!.rules[0]!.why, 'when[0] request.auth.claims[scope]: "write" matches none of ["read"]')
})

test('end to end: YAML through validatePolicy into compileAuthz', () => {
  const text = `apiVersion: weft/v1
kind: MeshConfig
metadata: { name: mesh }
spec: { defaultAuthorization: DENY }
---
apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: payments-allow-checkout }
spec:
  service: payments
  rules:
    - from: [{ principals: ["${CHECKOUT}"] }]
      to: [{ methods: [POST], paths: ["/charge"] }]
    - from: [{ source: { requestPrincipals: ["https://issuer.example/*"] } }]
      when: [{ key: "request.auth.claims[scope]", values: ["payments:read"] }]
`
  const p = validatePolicy(loadText(text, 'f.yaml'))
  assert.deepEqual(p.issues.filter((i) => i.severity === 'error'), [])
  const e = compileAuthz(p.authorization, { ...SVC, defaultAuthorization: p.mesh.defaultAuthorization })!
  assert.equal(allowed(e, { method: 'POST' }), true)
  assert.equal(allowed(e, { method: 'GET' }), false)
  assert.equal(allowed(e, { principal: undefined, requestPrincipal: 'https://issuer.example/alice', auth: { audiences: [], claims: { scope: 'payments:read' } } }), true)
  const ledger = compileAuthz(p.authorization, { service: 'ledger', namespace: 'default', defaultAuthorization: 'DENY' })!
  assert.equal(ledger.evaluate(req()).reason, 'default-deny')
})
