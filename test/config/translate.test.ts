// SMI and Gateway API translation (config/translate): what each field becomes, what is refused
// and why, and that every finding points at the YAML the user wrote (its kind, field, line:column).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadText } from '../../src/config/load.js'
import { formatIssue, validatePolicy } from '../../src/config/validate.js'
import { regexAsPattern } from '../../src/config/translate/regex-pattern.js'
import { composeView } from '../../src/control/compose.js'

const SERVICES = ['payments', 'payments-next', 'payments-shadow'].map((n) =>
  `apiVersion: weft/v1\nkind: Service\nmetadata: { name: ${n} }\nspec: { endpoints: [{ address: "127.0.0.1:1" }] }\n---\n`).join('')
const SERVICE_LINES = 15
const check = (yaml: string) => validatePolicy(loadText(SERVICES + yaml, 'routes.yaml'))
const findings = (yaml: string) => check(yaml).issues.map(formatIssue)

const httpRoute = (rules: string, extra = '') => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: canary
spec:
  parentRefs:
  - { group: "", kind: Service, name: payments, port: 80 }
${extra}  rules:
${rules}`

test('HTTPRoute → Route: matches, backendRefs (the parent\'s own name is the route\'s service), timeouts, retry and RequestMirror', () => {
  const policy = check(httpRoute(`  - name: refunds
    matches:
    - path: { type: PathPrefix, value: /refunds/ }
      method: POST
      headers: [{ name: X-Tier, value: gold }, { type: RegularExpression, name: x-user, value: "u[0-9]+" }]
      queryParams: [{ name: dry, value: "1" }]
    filters:
    - type: RequestMirror
      requestMirror: { backendRef: { name: payments-shadow, port: 80 }, fraction: { numerator: 1, denominator: 4 } }
    backendRefs:
    - { name: payments, port: 80, weight: 3 }
    - { name: payments-next, port: 80, weight: 1 }
    timeouts: { request: 2s, backendRequest: 500ms }
    retry: { codes: [503], attempts: 3, backoff: 100ms }
`))
  assert.deepEqual(policy.issues, [])
  const [route] = policy.routes
  assert.equal(route!.name, 'canary')
  assert.equal(route!.service, 'payments')
  const rule = route!.rules[0]!
  assert.equal(rule.name, 'refunds')
  // PathPrefix "/refunds/" is the segment /refunds: itself, or anything under "/refunds/".
  const common = { methods: ['POST'], headers: { 'x-tier': { exact: 'gold' }, 'x-user': { regex: 'u[0-9]+' } }, query: { dry: { exact: '1' } } }
  assert.deepEqual(rule.matches, [{ ...common, path: { exact: '/refunds' } }, { ...common, path: { prefix: '/refunds/' } }])
  assert.deepEqual(rule.backends, [{ subset: {}, weight: 3 }, { service: 'payments-next', subset: {}, weight: 1 }])
  assert.equal(rule.timeoutMs, 2000)
  assert.equal(rule.retries!.perTryTimeoutMs, 500)
  assert.equal(rule.retries!.attempts, 3)
  assert.deepEqual(rule.retries!.retryOn, ['connect-failure', '503'])
  assert.deepEqual(rule.retries!.backoff, { baseMs: 100, maxMs: 1000 })
  assert.deepEqual(rule.mirror, { service: 'payments-shadow', subset: {}, percent: 25 })
})

test('HTTPRoute rules are ordered by the Gateway API\'s precedence (Weft\'s rules are first-match): exact, regex, longest prefix, method, headers, query', () => {
  const policy = check(httpRoute(`  - { name: all, backendRefs: [{ name: payments }] }
  - { name: api, matches: [{ path: { value: /api } }] }
  - { name: api-get, matches: [{ path: { value: /api }, method: GET }] }
  - { name: api-2h, matches: [{ path: { value: /api }, method: GET, headers: [{ name: a, value: "1" }, { name: b, value: "2" }] }] }
  - { name: exact, matches: [{ path: { type: Exact, value: /api/v1 } }] }
  - { name: regex, matches: [{ path: { type: RegularExpression, value: "/api/v[0-9]+" } }] }
  - { name: api-v1, matches: [{ path: { value: /api/v1 } }] }
  - { name: one-q, matches: [{ path: { value: /api }, method: GET, headers: [{ name: a, value: "1" }, { name: b, value: "2" }], queryParams: [{ name: q, value: x }] }] }
`))
  assert.deepEqual(policy.issues.filter((i) => i.severity === 'error'), [])
  assert.deepEqual(policy.routes[0]!.rules.map((r) => r.name), ['exact', 'regex', 'api-v1', 'one-q', 'api-2h', 'api-get', 'api', 'all'])
})

test('a finding inside a translated resource names the source kind and field, at the source line:column', () => {
  const got = findings(httpRoute(`  - backendRefs:
    - { name: payments, weight: 1 }
    - name: payments-v3
      weight: 1
`))
  const line = SERVICE_LINES + 11
  assert.deepEqual(got, [`routes.yaml:${line}:13 error WEFT_E_REF_UNKNOWN HTTPRoute/canary (as Route) spec.rules[0].backendRefs[1].name: unknown service "payments-v3" (no Service resource with that name)`])
  const regex = check(httpRoute('  - matches: [{ path: { type: RegularExpression, value: "/(a+)+" } }]\n')).issues[0]!
  assert.equal(regex.code, 'WEFT_E_REGEX_UNSAFE')
  assert.equal(regex.path, 'spec.rules[0].matches[0].path.value')
  assert.equal(`${regex.line}:${regex.column}`, `${SERVICE_LINES + 9}:57`)
})

test('what Weft cannot honour is refused with the field named, never dropped', () => {
  const refused = (yaml: string) => check(yaml).issues.filter((i) => i.severity === 'error').map((i) => `${i.code} ${i.resource} ${i.path}: ${i.message}`)
  assert.match(refused(httpRoute('  - filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: / } } }]\n'))[0]!,
    /^WEFT_E_TRANSLATE_UNSUPPORTED HTTPRoute\/canary spec\.rules\[0\]\.filters\[0\]\.type: filter URLRewrite \(URL rewrites\) has no Weft equivalent/)
  assert.match(refused(httpRoute('  - timeouts: { request: 0s }\n'))[0]!, /spec\.rules\[0\]\.timeouts\.request: "0s" \(no timeout\) has no Weft equivalent/)
  assert.match(refused(httpRoute('  - sessionPersistence: { type: Cookie }\n'))[0]!, /sessionPersistence: session persistence is not supported/)
  assert.match(refused(httpRoute('  - backendRefs: [{ name: payments, filters: [{ type: RequestHeaderModifier }] }]\n'))[0]!, /backendRefs\[0\]\.filters: filters on one backend/)
  assert.match(refused(httpRoute('  - backendRefs: [{ name: payments, namespace: billing }]\n'))[0]!, /backendRefs\[0\]\.namespace: names namespace "billing", the route is in default/)
  assert.match(refused(httpRoute(`  - filters:
    - { type: RequestMirror, requestMirror: { backendRef: { name: payments-shadow } } }
    - { type: RequestMirror, requestMirror: { backendRef: { name: payments-next } } }
`))[0]!, /filters\[1\]: a Weft rule has one mirror/)
  // A parentRef with no kind is a Gateway (the Gateway API's default): not a mesh route.
  const gateway = `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: edge }\nspec:\n  parentRefs: [{ name: my-gateway }]\n  rules: [{ backendRefs: [{ name: payments }] }]\n`
  assert.match(refused(gateway)[0]!, /spec\.parentRefs\[0\]\.name: the parent is a gateway\.networking\.k8s\.io Gateway; Weft routes traffic between services/)
  assert.match(refused('apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: g }\nspec: {}\n')[0]!,
    /^WEFT_E_KIND_UNKNOWN Gateway\/g kind: kind "Gateway" of gateway\.networking\.k8s\.io is not translated \(Weft reads HTTPRoute, GRPCRoute with a Service parent\)/)
  assert.match(refused('apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata: { name: s }\nspec: {}\n')[0]!, /apiVersion: split\.smi-spec\.io v1alpha1 is not translated/)
  assert.match(refused('apiVersion: example.com/v1\nkind: Thing\nmetadata: { name: t }\n')[0]!, /must be "weft\/v1", or an SMI \/ Gateway API version Weft translates/)
})

test('hostnames do not apply to a Service parent: a warning, and the route is applied', () => {
  const policy = check(httpRoute('  - backendRefs: [{ name: payments }]\n', '  hostnames: [payments.example]\n'))
  assert.deepEqual(policy.issues.map((i) => `${i.severity} ${i.code} ${i.path}`), ['warning WEFT_W_TRANSLATE_IGNORED spec.hostnames'])
  assert.equal(policy.routes.length, 1)
})

test('a route as `kubectl get -o yaml` prints it (uid, resourceVersion, status) translates; a second Service parent (kind: Service with no group is the core one) makes a second Route', () => {
  const policy = check(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: both
  namespace: default
  uid: 4f1c0a52-1111-4c7e-9b7a-3c2d1e0f9a8b
  resourceVersion: "12345"
  generation: 2
  creationTimestamp: "2026-11-30T10:00:00Z"
  annotations: { team: payments }
spec:
  parentRefs:
  - { group: "", kind: Service, name: payments }
  - { kind: Service, name: payments-next }
  rules:
  - matches: [{ path: { type: Exact, value: /health } }]
status:
  parents: []
`)
  assert.deepEqual(policy.issues, [])
  assert.deepEqual(policy.routes.map((r) => `${r.name} ${r.service}`), ['both.payments payments', 'both.payments-next payments-next'])
})

test('GRPCRoute: an Exact method match is a grpc match; RegularExpression is a path regex on /service/method', () => {
  const policy = validatePolicy(loadText(`apiVersion: weft/v1
kind: Service
metadata: { name: ledger }
spec: { protocol: grpc, endpoints: [{ address: "127.0.0.1:1" }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: ledger }
spec:
  parentRefs: [{ group: "", kind: Service, name: ledger }]
  rules:
  - matches: [{ method: { type: RegularExpression, service: "weft\\\\.test\\\\..*", method: "Get|List" } }]
  - matches: [{ method: { service: weft.test.Ledger, method: Get }, headers: [{ name: x-tier, value: gold }] }]
`, 'grpc.yaml'))
  assert.deepEqual(policy.issues, [])
  // The longer service name and the header count rank the exact match first.
  assert.deepEqual(policy.routes[0]!.rules.map((r) => r.matches), [
    [{ grpc: { service: 'weft.test.Ledger', method: 'Get' }, headers: { 'x-tier': { exact: 'gold' } } }],
    [{ path: { regex: '/(?:weft\\.test\\..*)/(?:Get|List)' } }],
  ])
})

const SMI_GROUP = `apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: { name: the-routes }
spec:
  matches:
  - name: metrics
    pathRegex: "/metrics"
    methods: [GET]
  - name: api
    pathRegex: "^/api/v1/.*$"
    methods: ["*"]
    headers: { x-tier: "gold", x-region: "eu-.*" }
  - name: books
    pathRegex: ".*a-book.*new"
  - name: firefox
    headers: { user-agent: ".*Firefox.*" }
---
`
const target = (rules: string, extra = '') => `${SMI_GROUP}apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: { name: allow }
spec:
  destination: { kind: ServiceAccount, name: payments, namespace: default${extra} }
  rules:
${rules}  sources:
  - { kind: ServiceAccount, name: prometheus, namespace: default }
  - { kind: ServiceAccount, name: auditor, namespace: ops }
`

test('TrafficTarget → AuthorizationPolicy ALLOW: sources become SPIFFE IDs in the MeshConfig\'s trust domain; each named match a rule of plain patterns', () => {
  const mesh = 'apiVersion: weft/v1\nkind: MeshConfig\nmetadata: { name: mesh }\nspec: { trustDomain: corp.example }\n---\n'
  const policy = check(mesh + target('  - { kind: HTTPRouteGroup, name: the-routes, matches: [metrics, api] }\n', ', port: 8080'))
  assert.deepEqual(policy.issues, [])
  const [a] = policy.authorization
  assert.deepEqual([a!.name, a!.namespace, a!.service, a!.action], ['allow', 'default', 'payments', 'ALLOW'])
  const from = [{ principals: ['spiffe://corp.example/ns/default/sa/prometheus', 'spiffe://corp.example/ns/ops/sa/auditor'] }]
  assert.deepEqual(a!.rules, [
    // pathRegex is anchored at the start only (SMI): "/metrics" is the prefix "/metrics*".
    { from, to: [{ methods: ['GET'], paths: ['/metrics*'], ports: [8080] }], when: [] },
    { from, to: [{ paths: ['/api/v1/*'], ports: [8080] }], when: [{ key: 'request.headers[x-tier]', values: ['gold'] }, { key: 'request.headers[x-region]', values: ['eu-*'] }] },
  ])
})

test('TrafficTarget: a regular expression that is not a literal, prefix or suffix is refused (authorization never matches by regex), as are L4 routes and IdentityBinding', () => {
  const errors = (yaml: string) => check(yaml).issues.filter((i) => i.severity === 'error').map((i) => `${i.code} ${i.path}: ${i.message}`)
  assert.match(errors(target('  - { kind: HTTPRouteGroup, name: the-routes, matches: [books] }\n'))[0]!,
    /^WEFT_E_TRANSLATE_UNSUPPORTED spec\.rules\[0\]: pathRegex ".\*a-book.\*new" of match "books" is a regular expression that is not a path, a prefix or a suffix/)
  assert.match(errors(target('  - { kind: HTTPRouteGroup, name: the-routes, matches: [firefox] }\n'))[0]!, /header user-agent: ".\*Firefox.\*" of match "firefox"/)
  assert.match(errors(target('  - { kind: HTTPRouteGroup, name: the-routes, matches: [nope] }\n'))[0]!, /^WEFT_E_REF_UNKNOWN spec\.rules\[0\]\.matches\[0\]: HTTPRouteGroup "the-routes" has no match named "nope"/)
  assert.match(errors(target('  - { kind: TCPRoute, name: ports }\n'))[0]!, /spec\.rules\[0\]\.kind: TCPRoute: Weft meshes HTTP and gRPC calls/)
  const binding = target('  - { kind: HTTPRouteGroup, name: the-routes, matches: [metrics] }\n').replace('kind: ServiceAccount, name: payments', 'kind: IdentityBinding, name: payments')
  assert.match(errors(binding)[0]!, /spec\.destination\.kind: IdentityBinding .* is not translated/)
})

test('TrafficSplit → Route: backends by Service (the root service itself is the route\'s own), the groups\' matches, and its errors located', () => {
  const policy = check(`${SMI_GROUP}apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: { name: ab }
spec:
  service: payments
  matches: [{ kind: HTTPRouteGroup, name: the-routes }]
  backends:
  - { service: payments, weight: 900 }
  - { service: payments-next, weight: 100 }
`)
  assert.deepEqual(policy.issues, [])
  const rule = policy.routes[0]!.rules[0]!
  assert.equal(rule.name, 'ab')
  assert.deepEqual(rule.backends, [{ subset: {}, weight: 900 }, { service: 'payments-next', subset: {}, weight: 100 }])
  assert.deepEqual(rule.matches.map((m) => m.path?.regex ?? '-'), ['(?:/metrics).*', '(?:/api/v1/.*$).*', '(?:.*a-book.*new).*', '-'])
  assert.deepEqual(rule.matches[0]!.methods, ['GET'])
  assert.deepEqual(rule.matches[3]!.headers, { 'user-agent': { regex: '.*Firefox.*' } })

  const bad = findings(`apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: { name: ab }
spec:
  service: payments
  matches: [{ kind: HTTPRouteGroup, name: missing }]
  backends:
  - { service: payments-v9, weight: 1 }
  - { service: payments, weight: "500m" }
`)
  assert.deepEqual(bad, [
    `routes.yaml:${SERVICE_LINES + 9}:34 error WEFT_E_FIELD_INVALID TrafficSplit/ab spec.backends[1].weight: weights are whole numbers (split.smi-spec.io v1alpha2 and later); "500m" is v1alpha1's quantity form`,
    `routes.yaml:${SERVICE_LINES + 6}:43 error WEFT_E_REF_UNKNOWN TrafficSplit/ab spec.matches[0].name: unknown HTTPRouteGroup "missing" in namespace default`,
    `routes.yaml:${SERVICE_LINES + 8}:16 error WEFT_E_REF_UNKNOWN TrafficSplit/ab (as Route) spec.backends[0].service: unknown service "payments-v9" (no Service resource with that name)`,
  ])
})

test('regexAsPattern: literal, prefix and suffix expressions become patterns; the rest are refused', () => {
  const cases: [string, boolean, string | undefined][] = [
    ['/metrics', true, '/metrics*'], ['/metrics$', true, '/metrics'], ['^/api/.*', true, '/api/*'], ['.*', true, '*'], ['', true, '*'],
    ['/v1\\.2/x', true, '/v1.2/x*'], ['.*\\.json$', true, '*.json'], ['/a.b', true, undefined], ['/a[0-9]', true, undefined], ['.*mid.*', true, undefined],
    ['gold', false, 'gold'], ['eu-.*', false, 'eu-*'], ['.*Firefox', false, '*Firefox'], ['.*Firefox.*', false, undefined], ['a|b', false, undefined],
    ['/a\\*', true, undefined], ['/a+', true, undefined],
  ]
  for (const [re, startOnly, want] of cases) assert.equal(regexAsPattern(re, startOnly), want, `${re} (${startOnly ? 'start-anchored' : 'full'})`)
})

test('an instance\'s view fills in empty Services for the services an HTTPRoute or TrafficSplit sends to (as for a Route)', () => {
  const parse = (yaml: string) => loadText(yaml).resources.map((r) => r.value as object)
  const { resources } = composeView(parse(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ group: "", kind: Service, name: payments }]
  rules: [{ backendRefs: [{ name: payments-next }], filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: payments-shadow } } }] }]
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: { name: s }
spec: { service: web, backends: [{ service: web-v2, weight: 1 }] }
`), {}, { fillRouteTargets: true })
  const filled = resources.filter((r) => (r as { kind: string }).kind === 'Service').map((r) => (r as { metadata: { name: string } }).metadata.name)
  assert.deepEqual(filled, ['payments', 'payments-next', 'payments-shadow', 'web', 'web-v2'])
  assert.deepEqual(validatePolicy(loadText(resources.map((r) => JSON.stringify(r)).join('\n---\n'))).issues.filter((i) => i.severity === 'error'), [])
})

test('weft delete takes the SMI and Gateway API kinds as kubectl spells them', async () => {
  const { canonicalKind } = await import('../../src/cli/delete.js')
  assert.deepEqual(['httproutes', 'grpcroute', 'ts', 'httproutegroup', 'traffictargets'].map(canonicalKind), ['HTTPRoute', 'GRPCRoute', 'TrafficSplit', 'HTTPRouteGroup', 'TrafficTarget'])
})
