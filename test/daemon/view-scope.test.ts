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
  const first = async (w: typeof wp) => {
    for (;;) {
      const m = await w.next()
      if (m.type === 'snapshot') return m
    }
  }
  assert.deepEqual(names(await first(wp)), ['AuthorizationPolicy/payments-allow-checkout', 'PeerAuthentication/payments-permissive', 'Service/payments'])
  assert.deepEqual(names(await first(wl)), ['AuthorizationPolicy/ledger-allow-payments', 'PeerAuthentication/payments-permissive', 'Service/payments'])
  assert.deepEqual(names(await first(wc)), ['PeerAuthentication/payments-permissive', 'Service/payments'], 'a caller sees the modes of its destinations, not their authorization')

  assert.equal((await applyPolicy(d, allow('checkout', 'web'))).status, 200)
  const delta = async (w: typeof wp) => {
    for (;;) {
      const m = await w.next()
      if (m.type === 'policy' || m.type === 'snapshot') return m
    }
  }
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
