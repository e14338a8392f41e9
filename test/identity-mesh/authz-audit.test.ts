// AUDIT AuthorizationPolicies under a daemon (identity issue): a matching request goes through,
// is counted in weft_authz_audit_total{policy} and logged in one line naming the policy; AUDIT
// never allows what a DENY denies, and never denies.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { applyPolicy, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

const POLICY = [
  'apiVersion: weft/v1',
  'kind: AuthorizationPolicy',
  'metadata: { name: payments-audit-checkout-refunds }',
  'spec:',
  '  service: payments',
  '  action: AUDIT',
  '  rules:',
  '    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/checkout"] }]',
  '      to: [{ paths: ["/refunds/*"] }]',
  '---',
  'apiVersion: weft/v1',
  'kind: AuthorizationPolicy',
  'metadata: { name: payments-deny-admin }',
  'spec:',
  '  service: payments',
  '  action: DENY',
  '  rules:',
  '    - to: [{ paths: ["/refunds/admin"] }]',
  '',
].join('\n')

test('AUDIT: a matching request is served, counted in weft_authz_audit_total{policy} and logged once naming the policy; a DENY it also matches still denies', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, POLICY)
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  const handled: string[] = []
  await payments.listen(http.createServer((req, res) => {
    handled.push(req.url ?? '')
    res.end('ok')
  }), { port: 0, host: '127.0.0.1' })
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  const ledger = await controlMesh(d, 'ledger')
  t.after(() => ledger.close())
  await waitEndpoints(checkout, 'payments', 1)
  await waitEndpoints(ledger, 'payments', 1)
  const auditLines = () => payments.log.lines.filter((l) => l.includes('authz audit'))
  const audited = async () => metricValue(await payments.metrics(), 'weft_authz_audit_total', { destination_service: 'payments', policy: 'payments-audit-checkout-refunds' })

  // Matches the AUDIT rule: served, counted, one log line naming the policy and the caller.
  const r1 = await checkout.request('http://payments/refunds/r-1', { method: 'POST', body: '{}' })
  assert.equal(r1.statusCode, 200)
  await r1.body.text()
  assert.deepEqual(handled, ['/refunds/r-1'])
  assert.equal(await audited(), 1)
  assert.equal(auditLines().length, 1, `one audit line: ${payments.log.lines.join(' | ')}`)
  assert.match(auditLines()[0]!, /^info authz audit: POST \/refunds\/r-1 from spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout matched AUDIT payments-audit-checkout-refunds \(not enforced\)/)

  // Not matched by the AUDIT rule (another caller, another path): served, not counted.
  for (const [mesh, path] of [[ledger, '/refunds/r-2'], [checkout, '/charges/c-1']] as const) {
    const r = await mesh.request(`http://payments${path}`)
    assert.equal(r.statusCode, 200, path)
    await r.body.text()
  }
  assert.equal(await audited(), 1, 'only matching requests are counted')

  // Matches both the AUDIT and the DENY: denied (AUDIT does not allow), and still counted as audited.
  const denied = await checkout.request('http://payments/refunds/admin')
  assert.equal(denied.statusCode, 403)
  assert.equal(denied.headers['weft-error-code'], 'WEFT_ERR_FORBIDDEN')
  assert.match(await denied.body.text(), /DENY payments-deny-admin rule 0/)
  assert.ok(!handled.includes('/refunds/admin'), 'the handler never ran for the denied request')
  const m = await payments.metrics()
  assert.equal(metricValue(m, 'weft_authz_audit_total', { policy: 'payments-audit-checkout-refunds' }), 2)
  assert.equal(metricValue(m, 'weft_authz_denied_total', { policy: 'payments-deny-admin' }), 1)
  assert.equal(metricValue(m, 'weft_authz_denied_total', { policy: 'payments-audit-checkout-refunds' }), 0, 'an AUDIT policy never denies')
  assert.ok(auditLines().every((l) => l.includes('payments-audit-checkout-refunds')))
})
