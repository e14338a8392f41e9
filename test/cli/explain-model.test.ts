import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { EndpointMap } from '../../src/control/protocol.js'
import { explain, type ExplainView } from '../../src/cli/explain-model.js'

const ep = (address: string, version: string, instance: string) => ({ address, protocol: 'http' as const, labels: { version }, instance })

const endpoints: EndpointMap = {
  payments: [ep('127.0.0.1:8081', 'v1', 'payments-a'), ep('127.0.0.1:8082', 'v2', 'payments-b')],
  ledger: [ep('127.0.0.1:9001', 'v1', 'ledger-a')],
}

const view: ExplainView = {
  version: 7,
  endpoints,
  resources: [
    { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { timeout: '5s', retries: { attempts: 1 } } },
    {
      apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'payments-canary' },
      spec: {
        service: 'payments',
        rules: [
          { matches: [{ headers: { 'x-canary': { exact: 'true' } } }], backends: [{ subset: { version: 'v2' } }] },
          { matches: [{ path: { prefix: '/charge' } }], backends: [{ subset: { version: 'v1' }, weight: 90 }, { subset: { version: 'v2' }, weight: 10 }], timeout: '2s' },
        ],
      },
    },
  ],
}

test('explain: the header-matched canary rule, its eligible endpoints and settings with their source', () => {
  const x = explain(view, { from: 'checkout', url: 'http://payments/charge', method: 'post', headers: [['X-Canary', 'true']] })
  assert.equal(x.kind, 'routed')
  if (x.kind !== 'routed') return
  assert.equal(x.method, 'POST')
  assert.deepEqual(x.rules.map((r) => [r.rule, r.outcome]), [['payments-canary#0', 'matched'], ['payments-canary#1', 'not evaluated']])
  assert.deepEqual(x.rules[0]!.matches, [[{ wants: 'header x-canary exact "true"', got: '"true"', ok: true }]])
  assert.equal(x.chosen.fallback, false)
  assert.equal(x.backends.length, 1)
  assert.deepEqual(x.backends[0]!.endpoints.filter((e) => e.eligible).map((e) => e.address), ['127.0.0.1:8082'])
  assert.match(x.backends[0]!.endpoints.find((e) => !e.eligible)!.why!, /version is "v1", the subset wants "v2"/)
  const setting = (name: string) => x.settings.find((s) => s.name === name)!
  assert.deepEqual(setting('timeout'), { name: 'timeout', value: '5s', from: 'Service payments spec.timeout' })
  assert.match(setting('retries').value, /^1 retry \(at most 2 tries\)/)
  assert.equal(setting('circuit breaker').from, 'default')
  assert.match(x.endpointSource, /the registry \(2 registered\)/)
})

test('explain: the second rule with its own timeout and a weighted split', () => {
  const x = explain(view, { from: 'checkout', url: 'http://payments/charge/42?x=1', method: 'GET', headers: [] })
  assert.equal(x.kind, 'routed')
  if (x.kind !== 'routed') return
  assert.deepEqual(x.rules.map((r) => r.outcome), ['no match', 'matched'])
  assert.deepEqual(x.rules[0]!.matches[0], [{ wants: 'header x-canary exact "true"', got: 'none', ok: false }])
  assert.deepEqual(x.backends.map((b) => [b.percent, b.eligible]), [[90, 1], [10, 1]])
  assert.deepEqual(x.settings.find((s) => s.name === 'timeout'), { name: 'timeout', value: '2s', from: 'Route payments-canary rule 1 (spec.rules[1].timeout)' })
})

test('explain: validation warnings about the service and its routes are notes (a shadowed rule)', () => {
  const shadowed: ExplainView = {
    ...view,
    resources: [
      ...view.resources,
      { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'payments-late' }, spec: { service: 'payments', rules: [{ matches: [{ path: { prefix: '/charge/x' } }] }] } },
    ],
  }
  const x = explain(shadowed, { from: 'checkout', url: 'http://payments/charge/x', method: 'GET', headers: [] })
  assert.equal(x.kind, 'routed')
  if (x.kind !== 'routed') return
  assert.equal(x.chosen.rule, 'payments-canary#1')
  assert.ok(x.notes.some((n) => /^WEFT_W_ROUTE_SHADOWED Route\/payments-late spec\.rules\[0\]\.matches: overlapping routes/.test(n)), x.notes.join('\n'))
})

test('explain: a rule\'s mirror is a note (where copies go, how many)', () => {
  const mirrored: ExplainView = {
    ...view,
    resources: [
      view.resources[0]!,
      { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'payments-shadow' }, spec: { service: 'payments', rules: [{ backends: [{ subset: { version: 'v1' } }], mirror: { subset: { version: 'v2' }, percent: 25 } }] } },
    ],
  }
  const x = explain(mirrored, { from: 'checkout', url: 'http://payments/charge', method: 'POST', headers: [] })
  assert.equal(x.kind, 'routed')
  if (x.kind !== 'routed') return
  assert.ok(x.notes.includes('mirror: 25% of HTTP requests are also copied to payments subset {"version":"v2"} (fire and forget, Host payments-shadow; the caller never sees the copy\'s answer)'), x.notes.join('\n'))
})

test('explain: a backend that is another Service lists that Service\'s endpoints', () => {
  const split: ExplainView = {
    ...view,
    resources: [
      view.resources[0]!,
      { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'ledger' }, spec: {} },
      { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'payments-split' }, spec: { service: 'payments', rules: [{ backends: [{ subset: { version: 'v1' }, weight: 3 }, { service: 'ledger', weight: 1 }] }] } },
    ],
  }
  const x = explain(split, { from: 'checkout', url: 'http://payments/charge', method: 'GET', headers: [] })
  assert.equal(x.kind, 'routed')
  if (x.kind !== 'routed') return
  assert.deepEqual(x.backends.map((b) => [b.service, b.percent, b.endpoints.map((e) => e.address)]), [
    ['payments', 75, ['127.0.0.1:8081', '127.0.0.1:8082']],
    ['ledger', 25, ['127.0.0.1:9001']],
  ])
  assert.equal(x.backends[1]!.eligible, 1)
})

test('explain: no rule matches → the default route with every endpoint; a service without a Route', () => {
  const x = explain(view, { from: 'checkout', url: 'http://payments.default/refund', method: 'GET', headers: [] })
  assert.equal(x.kind, 'routed')
  if (x.kind !== 'routed') return
  assert.equal(x.chosen.fallback, true)
  assert.match(x.chosen.why, /no rule of Route payments-canary matches/)
  assert.equal(x.backends[0]!.eligible, 2)
  const l = explain(view, { from: 'checkout', url: 'http://ledger/entries', method: 'GET', headers: [] })
  assert.equal(l.kind, 'routed')
  if (l.kind !== 'routed') return
  assert.equal(l.service.declared, false)
  assert.match(l.chosen.why, /ledger has no Route/)
  assert.deepEqual(l.settings.find((s) => s.name === 'timeout'), { name: 'timeout', value: '15s', from: 'default' })
})

test('explain: a host the mesh does not know, an IP, passes through untouched', () => {
  for (const url of ['http://example.com/x', 'http://127.0.0.1:8081/x', 'http://[::1]:80/']) {
    const x = explain(view, { from: 'checkout', url, method: 'GET', headers: [] })
    assert.equal(x.kind, 'passthrough', url)
    if (x.kind === 'passthrough') assert.deepEqual(x.services, ['ledger', 'payments'])
  }
})

test('explain: a view that would not validate is reported as a NACK, not explained', () => {
  const bad: ExplainView = { version: 3, endpoints: {}, resources: [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { timeout: 'soon' } }] }
  const x = explain(bad, { from: 'checkout', url: 'http://payments/', method: 'GET', headers: [] })
  assert.equal(x.kind, 'invalid')
})

test('explain answers "would this caller be allowed, and by which rule": the destination\'s mTLS mode and its AuthorizationPolicy on the caller\'s SPIFFE ID', () => {
  const authz = [
    { apiVersion: 'weft/v1', kind: 'PeerAuthentication', metadata: { name: 'payments-permissive' }, spec: { service: 'payments', mtls: 'PERMISSIVE' } },
    { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'payments-allow-checkout' }, spec: { service: 'payments', action: 'ALLOW', rules: [{ from: [{ principals: ['spiffe://weft.local/ns/default/sa/checkout'] }], to: [{ methods: ['POST'], paths: ['/charge'] }] }] } },
    { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'ledger-only' }, spec: { service: 'ledger', action: 'ALLOW', rules: [{}] } },
  ]
  const v = { ...view, resources: [...view.resources, ...authz] }
  const ok = explain(v, { from: 'checkout', url: 'http://payments/charge', method: 'POST', headers: [] })
  assert.equal(ok.kind, 'routed')
  if (ok.kind !== 'routed') return
  assert.equal(ok.access.allowed, true)
  assert.equal(ok.access.principal, 'spiffe://weft.local/ns/default/sa/checkout')
  assert.match(ok.access.why, /ALLOW payments-allow-checkout rule 0 matches/)
  assert.deepEqual(ok.access.mtls, { mode: 'PERMISSIVE', from: 'PeerAuthentication payments-permissive' })
  assert.equal(ok.access.policies.find((p) => p.name === 'ledger-only')?.applies, false)

  const no = explain(v, { from: 'ledger', url: 'http://payments/charge', method: 'POST', headers: [] })
  assert.ok(no.kind === 'routed' && !no.access.allowed)
  if (no.kind !== 'routed') return
  assert.match(no.access.why, /none of their rules matches: denied/)
  const rule = no.access.policies.find((p) => p.name === 'payments-allow-checkout')!.rules[0]!
  assert.equal(rule.matched, false)
  assert.match(rule.why ?? '', /principals/)
})
