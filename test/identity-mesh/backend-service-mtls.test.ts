// A Route backend that is another Service, under the daemon's mTLS: each endpoint is dialed
// expecting the SPIFFE ID of the Service it belongs to, not the route's (identity issue, with
// routing's backends by Service). Real meshed servers with their own SVIDs.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { applyPolicy, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, endpointsOf, meshedNameServer } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

test('a split whose second backend is another Service: every call succeeds over mTLS, each server checked against its own Service\'s SPIFFE ID', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const payments = await meshedNameServer(d, 'payments')
  t.after(() => payments.mesh.close())
  const next = await meshedNameServer(d, 'payments-next')
  t.after(() => next.mesh.close())
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  const applied = await applyPolicy(d, [
    'apiVersion: weft/v1',
    'kind: Service',
    'metadata: { name: payments }',
    `spec: { endpoints: [{ address: "${payments.address}", mtls: true }] }`,
    '---',
    'apiVersion: weft/v1',
    'kind: Service',
    'metadata: { name: payments-next }',
    `spec: { endpoints: [{ address: "${next.address}", mtls: true }] }`,
    '---',
    'apiVersion: weft/v1',
    'kind: Route',
    'metadata: { name: payments }',
    'spec:',
    '  service: payments',
    '  rules:',
    '    - backends: [{ weight: 50 }, { service: payments-next, weight: 50 }]',
    '',
  ].join('\n'))
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const version = (applied.body as { version: number }).version
  await eventually(async () => metricValue(await checkout.metrics(), 'weft_config_version') >= version && endpointsOf(checkout, 'payments-next').length === 1, 10_000, `checkout runs version ${version}`)
  assert.ok(checkout.identity.current(), 'checkout has its SVID')

  const served = new Map<string, number>()
  for (let i = 0; i < 40; i++) {
    const res = await checkout.request('http://payments/charge')
    assert.equal(res.statusCode, 200)
    const who = await res.body.text()
    served.set(who, (served.get(who) ?? 0) + 1)
  }
  // 40 draws at p = 0.5: both sides served (a one-sided run has probability 2^-39).
  assert.ok((served.get('payments') ?? 0) > 0 && (served.get('payments-next') ?? 0) > 0, JSON.stringify([...served]))
  assert.equal((served.get('payments') ?? 0) + (served.get('payments-next') ?? 0), 40)
})
