// mTLS between meshed HTTP services under a daemon (identity issue): STRICT by default, SVIDs from
// the daemon's CA, the caller's identity as source_service, plaintext refused with a clear answer.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startTestDaemon, applyPolicy } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

test('under a daemon, meshed HTTP calls are mTLS (STRICT by default): the server sees the caller\'s SPIFFE ID, plaintext gets 401', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  const seen: { encrypted: boolean; peer?: string }[] = []
  const server = http.createServer((req, res) => {
    seen.push({ encrypted: Boolean((req.socket as { encrypted?: boolean }).encrypted) })
    res.end('charged')
  })
  const { port } = (await payments.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(checkout, 'payments', 1)

  assert.equal(payments.identity.id, 'spiffe://weft.local/ns/default/sa/payments')
  assert.ok(payments.identity.current(), 'payments has its SVID')
  assert.ok(checkout.identity.current(), 'checkout has its SVID')

  const res = await checkout.request('http://payments/charge')
  assert.equal(res.statusCode, 200)
  assert.equal(await res.body.text(), 'charged')
  assert.deepEqual(seen, [{ encrypted: true }])
  const m = await payments.metrics()
  assert.equal(metricValue(m, 'http_server_request_duration_seconds_count', { source_service: 'checkout', status_code: '200' }), 1)
  assert.ok(metricValue(m, 'weft_certificate_expiry_timestamp_seconds', {}) > Date.now() / 1000 + 3600)
  // The CA (here the daemon's root, in the bundle) outlives the SVID it signed.
  assert.ok(metricValue(m, 'weft_ca_expiry_timestamp_seconds', {}) >= metricValue(m, 'weft_certificate_expiry_timestamp_seconds', {}))

  const plain = await request(`http://127.0.0.1:${port}/charge`)
  assert.equal(plain.statusCode, 401)
  const body = (await plain.body.json()) as { error: { code: string; message: string } }
  assert.equal(body.error.code, 'WEFT_ERR_UNAUTHENTICATED')
  assert.match(body.error.message, /requires mTLS \(mode STRICT\)/)
  assert.equal(seen.length, 1, 'the handler never ran for the plaintext call')
  assert.equal(metricValue(await payments.metrics(), 'weft_mtls_connections_refused_total', { reason: 'plaintext' }), 1)

  // PERMISSIVE for payments: plaintext is served too (no peer identity), mTLS still works.
  const applied = await applyPolicy(d, 'apiVersion: weft/v1\nkind: PeerAuthentication\nmetadata: { name: payments-permissive }\nspec: { service: payments, mtls: PERMISSIVE }\n')
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  await new Promise((r) => setTimeout(r, 300))
  const plain2 = await request(`http://127.0.0.1:${port}/charge`)
  assert.equal(plain2.statusCode, 200)
  await plain2.body.text()
  const res2 = await checkout.request('http://payments/charge')
  assert.equal(res2.statusCode, 200)
  await res2.body.text()
  assert.deepEqual(seen.slice(1), [{ encrypted: false }, { encrypted: true }])
})

test('AuthorizationPolicy on the caller\'s SPIFFE ID: payments allows only checkout; another service is denied 403 naming the policy, and counted', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, [
    'apiVersion: weft/v1',
    'kind: AuthorizationPolicy',
    'metadata: { name: payments-allow-checkout }',
    'spec:',
    '  service: payments',
    '  action: ALLOW',
    '  rules:',
    '    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/checkout"] }]',
    '      to: [{ methods: [POST], paths: ["/charge"] }]',
    '---',
    'apiVersion: weft/v1',
    'kind: AuthorizationPolicy',
    'metadata: { name: payments-deny-admin }',
    'spec:',
    '  service: payments',
    '  action: DENY',
    '  rules:',
    '    - to: [{ paths: ["/admin", "/admin/*"] }]',
    '',
  ].join('\n'))
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  let handled = 0
  await payments.listen(http.createServer((_req, res) => {
    handled++
    res.end('charged')
  }), { port: 0, host: '127.0.0.1' })
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  const ledger = await controlMesh(d, 'ledger')
  t.after(() => ledger.close())
  await waitEndpoints(checkout, 'payments', 1)
  await waitEndpoints(ledger, 'payments', 1)

  const ok = await checkout.request('http://payments/charge', { method: 'POST', body: '{}' })
  assert.equal(ok.statusCode, 200)
  await ok.body.text()

  const denied = await ledger.request('http://payments/charge', { method: 'POST', body: '{}' })
  assert.equal(denied.statusCode, 403)
  assert.equal(denied.headers['weft-error-code'], 'WEFT_ERR_FORBIDDEN')
  const body = (await denied.body.json()) as { error: { message: string } }
  assert.match(body.error.message, /no rule of ALLOW payments-allow-checkout matched/)

  for (const path of ['/admin', '//admin', '/%2Fadmin', '/charge/../admin']) {
    const r = await checkout.request(`http://payments${path}`, { method: 'POST', body: '{}' })
    await r.body.text()
    assert.equal(r.statusCode, 403, path)
  }
  assert.equal(handled, 1, 'the handler ran only for the allowed call')
  const m = await payments.metrics()
  assert.equal(metricValue(m, 'weft_authz_denied_total', { policy: 'payments-allow-checkout' }), 1)
  assert.ok(metricValue(m, 'weft_authz_denied_total', { policy: 'payments-deny-admin' }) >= 3)
})
