// An instance's view holds only its own service's inbound policy (RELIABILITY S8b): another
// service's AuthorizationPolicy and RequestAuthentication never reach it, in the first snapshot or
// in a policy delta; what a caller needs (Services, Routes, PeerAuthentication) reaches everyone.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { applyPolicy, call, openWatch, register, startTestDaemon } from '../helpers/daemon.js'

const allow = (service: string, caller: string) => `---
apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: ${service}-allow-${caller} }
spec:
  service: ${service}
  action: ALLOW
  rules: [{ from: [{ principals: ["spiffe://weft.local/ns/default/sa/${caller}"] }] }]
`
const POLICY = `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: 2s }
---
apiVersion: weft/v1
kind: PeerAuthentication
metadata: { name: payments-permissive }
spec: { service: payments, mtls: PERMISSIVE }
${allow('payments', 'checkout')}${allow('ledger', 'payments')}`

/** The next message of these types (snapshots and policy deltas carry resources). */
async function next(w: { next(): Promise<{ type: string }> }, types: string[]): Promise<{ type: string; resources?: object[] }> {
  for (;;) {
    const m = await w.next()
    if (types.includes(m.type)) return m as { type: string; resources?: object[] }
  }
}

const PAYMENTS = 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec: { timeout: 2s }\n'

const names = (m: { resources?: object[] }) => (m.resources ?? []).map((r) => `${(r as { kind: string }).kind}/${(r as { metadata: { name: string } }).metadata.name}`).sort()

test('each instance sees only its own service\'s AuthorizationPolicy, in snapshots and policy deltas', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, POLICY)).status, 200)
  const p = await register(d, { service: 'payments', address: '127.0.0.1', port: 8081 })
  const l = await register(d, { service: 'ledger', address: '127.0.0.1', port: 9001, protocol: 'grpc' })
  const c = await register(d, { service: 'checkout' })
  const wp = await openWatch(d.url, p.id, p.token)
  const wl = await openWatch(d.url, l.id, l.token)
  const wc = await openWatch(d.url, c.id, c.token)
  t.after(() => {
    for (const w of [wp, wl, wc]) w.close()
  })
  const first = (w: typeof wp) => next(w, ['snapshot'])
  assert.deepEqual(names(await first(wp)), ['AuthorizationPolicy/payments-allow-checkout', 'PeerAuthentication/payments-permissive', 'Service/payments'])
  assert.deepEqual(names(await first(wl)), ['AuthorizationPolicy/ledger-allow-payments', 'PeerAuthentication/payments-permissive', 'Service/payments'])
  assert.deepEqual(names(await first(wc)), ['PeerAuthentication/payments-permissive', 'Service/payments'], 'a caller sees the modes of its destinations, not their authorization')

  assert.equal((await applyPolicy(d, allow('checkout', 'web'))).status, 200)
  const delta = (w: typeof wp) => next(w, ['policy', 'snapshot'])
  assert.ok(names(await delta(wc)).includes('AuthorizationPolicy/checkout-allow-web'))
  assert.ok(!names(await delta(wp)).includes('AuthorizationPolicy/checkout-allow-web'))
  assert.ok(!names(await delta(wl)).includes('AuthorizationPolicy/checkout-allow-web'))
})

test('an instance\'s token opens nothing of another instance: its watch, certificate and JWT-SVID calls answer 403 with no body of theirs', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, POLICY)).status, 200)
  const p = await register(d, { service: 'payments', address: '127.0.0.1', port: 8081 })
  const l = await register(d, { service: 'ledger', address: '127.0.0.1', port: 9001, protocol: 'grpc' })
  for (const [method, path, body] of [
    ['GET', `/v1/instances/${l.id}/watch`, undefined],
    ['POST', `/v1/instances/${l.id}/svid`, { csr: '-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n' }],
    ['POST', `/v1/instances/${l.id}/jwt-svid`, { audience: 'x' }],
    ['GET', '/v1/snapshot', undefined],
    ['GET', '/v1/policy', undefined],
  ] as const) {
    const r = await call(d.url, method, path, p.token, body)
    assert.equal(r.status, 403, `${method} ${path}`)
    assert.equal(r.body.error.code, 'WEFT_ERR_FORBIDDEN')
    assert.ok(!JSON.stringify(r.body).includes('ledger-allow-payments'), `${path}: nothing of the policy in the refusal`)
  }
})

const requestAuth = (name: string, service: string | undefined, audience: string, namespace?: string) => `---
apiVersion: weft/v1
kind: RequestAuthentication
metadata: { name: ${name}${namespace ? `, namespace: ${namespace}` : ''} }
spec:
${service ? `  service: ${service}\n` : ''}  jwtRules: [{ issuer: "https://issuer.test", jwksUri: "http://127.0.0.1:9/jwks", audiences: [${audience}], algorithms: [ES256] }]
`

test('RequestAuthentication is scoped like AuthorizationPolicy: one for ledger reaches only ledger; one without a service reaches every instance of its namespace and none of another', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, `${PAYMENTS}${requestAuth('ledger-users', 'ledger', 'ledger')}${requestAuth('default-users', undefined, 'shop')}${requestAuth('team-a-users', undefined, 'team-a', 'team-a')}`)
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const teamA = (await call(d.url, 'POST', '/v1/tokens', d.adminToken, { namespace: 'team-a' })).body.token as string
  const p = await register(d, { service: 'payments', address: '127.0.0.1', port: 8081 })
  const l = await register(d, { service: 'ledger', address: '127.0.0.1', port: 9001, protocol: 'grpc' })
  const c = await register(d, { service: 'checkout' })
  const a = await register(d, { service: 'ledger', namespace: 'team-a', address: '127.0.0.1', port: 9101, protocol: 'grpc' }, teamA)
  const watches = { payments: await openWatch(d.url, p.id, p.token), ledger: await openWatch(d.url, l.id, l.token), checkout: await openWatch(d.url, c.id, c.token), 'team-a/ledger': await openWatch(d.url, a.id, a.token) }
  t.after(() => {
    for (const w of Object.values(watches)) w.close()
  })
  const ras = (m: { resources?: object[] }) => names(m).filter((n) => n.startsWith('RequestAuthentication/'))
  const first = Object.fromEntries(await Promise.all(Object.entries(watches).map(async ([k, w]) => [k, ras(await next(w, ['snapshot']))] as const)))
  assert.deepEqual(first, {
    payments: ['RequestAuthentication/default-users'],
    ledger: ['RequestAuthentication/default-users', 'RequestAuthentication/ledger-users'],
    checkout: ['RequestAuthentication/default-users'],
    'team-a/ledger': ['RequestAuthentication/team-a-users'],
  }, 'the ledger\'s issuers reach no other service; a namespace-wide one reaches its namespace only')

  // A change to the ledger's RequestAuthentication: the delta (or snapshot) each instance is sent
  // carries it only to the ledger of namespace default.
  assert.equal((await applyPolicy(d, requestAuth('ledger-users', 'ledger', 'ledger-v2'))).status, 200)
  const ledgerView = await next(watches.ledger, ['policy', 'snapshot'])
  const rule = (ledgerView.resources as { kind: string; metadata: { name: string }; spec: { jwtRules: { audiences: string[] }[] } }[])
    .find((r) => r.kind === 'RequestAuthentication' && r.metadata.name === 'ledger-users')
  assert.deepEqual(rule?.spec.jwtRules[0]?.audiences, ['ledger-v2'])
  for (const k of ['payments', 'checkout', 'team-a/ledger'] as const) {
    // An instance whose view did not change may be sent nothing at all; what it is sent never holds it.
    const m = await watches[k].maybeNext(1000)
    if (m && (m.type === 'policy' || m.type === 'snapshot')) assert.ok(!ras(m as { resources?: object[] }).includes('RequestAuthentication/ledger-users'), `${k} was sent the ledger's RequestAuthentication`)
  }
  for (const k of ['payments', 'checkout', 'team-a/ledger'] as const) {
    const seen = JSON.stringify(watches[k].all)
    assert.ok(!seen.includes('ledger-users') && !seen.includes('ledger-v2'), `nothing of the ledger's RequestAuthentication ever reached ${k}`)
  }
})

test('an SMI TrafficTarget is scoped as the AuthorizationPolicy it becomes: only its destination service sees it; the HTTPRouteGroup it names reaches everyone', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, `${PAYMENTS}---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: { name: the-routes }
spec: { matches: [{ name: metrics, pathRegex: /metrics, methods: [GET] }] }
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: { name: payments-metrics }
spec:
  destination: { kind: ServiceAccount, name: payments }
  rules: [{ kind: HTTPRouteGroup, name: the-routes }]
  sources: [{ kind: ServiceAccount, name: prometheus }]
`)
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const p = await register(d, { service: 'payments', address: '127.0.0.1', port: 8081 })
  const c = await register(d, { service: 'checkout' })
  const wp = await openWatch(d.url, p.id, p.token)
  const wc = await openWatch(d.url, c.id, c.token)
  t.after(() => {
    wp.close()
    wc.close()
  })
  const snapshot = async (w: typeof wp) => names(await next(w, ['snapshot']))
  assert.deepEqual(await snapshot(wp), ['HTTPRouteGroup/the-routes', 'Service/payments', 'TrafficTarget/payments-metrics'])
  assert.deepEqual(await snapshot(wc), ['HTTPRouteGroup/the-routes', 'Service/payments'])
})
