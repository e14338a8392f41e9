// SMI TrafficTarget + HTTPRouteGroup, applied to the daemon as the SMI spec writes them: the daemon
// keeps them as written, every instance translates them into an AuthorizationPolicy ALLOW on the
// destination's SPIFFE ID terms, and real meshed servers enforce it over mTLS.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { test } from 'node:test'
import { applyPolicy, call, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

test('TrafficTarget: only prometheus may GET /metrics on payments; other routes and other callers get 403 naming the TrafficTarget', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, readFileSync(new URL('../fixtures/translate/smi-access.yaml', import.meta.url), 'utf8'))
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  assert.deepEqual((applied.body as { changes: { kind: string }[] }).changes.map((c) => c.kind), ['HTTPRouteGroup', 'TrafficTarget'])
  const listed = await call(d.url, 'GET', '/v1/policy', d.adminToken)
  assert.deepEqual((listed.body as { resources: { kind: string }[] }).resources.map((r) => r.kind), ['HTTPRouteGroup', 'TrafficTarget'], 'stored as written')

  // The application serves /metrics here, not the mesh (its own /metrics is turned off).
  const payments = await controlMesh(d, 'payments', { inbound: { health: { metrics: false } } })
  t.after(() => payments.close())
  let handled = 0
  await payments.listen(http.createServer((_req, res) => {
    handled++
    res.end('metrics here')
  }), { port: 0, host: '127.0.0.1' })
  const prometheus = await controlMesh(d, 'prometheus')
  t.after(() => prometheus.close())
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(prometheus, 'payments', 1)
  await waitEndpoints(checkout, 'payments', 1)

  const allowed = await prometheus.request('http://payments/metrics')
  assert.equal(allowed.statusCode, 200)
  assert.equal(await allowed.body.text(), 'metrics here')
  // pathRegex is anchored at the start only: /metrics/extra is under it.
  const under = await prometheus.request('http://payments/metrics/extra')
  assert.equal(under.statusCode, 200)
  await under.body.dump()

  for (const [who, mesh, method, path] of [['prometheus', prometheus, 'POST', '/metrics'], ['prometheus', prometheus, 'GET', '/charge'], ['checkout', checkout, 'GET', '/metrics']] as const) {
    const denied = await mesh.request(`http://payments${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) })
    assert.equal(denied.statusCode, 403, `${who} ${method} ${path}`)
    assert.equal(denied.headers['weft-error-code'], 'WEFT_ERR_FORBIDDEN')
    const body = (await denied.body.json()) as { error: { message: string } }
    assert.match(body.error.message, /ALLOW path-specific/)
  }
  assert.equal(handled, 2, 'the handler ran only for the allowed calls')
  assert.equal(metricValue(await payments.metrics(), 'weft_authz_denied_total', { policy: 'path-specific' }), 3)

  // The TrafficTarget still names the group: deleting it first would leave the policy invalid.
  const early = await call(d.url, 'DELETE', '/v1/policy/httproutegroup/the-routes', d.adminToken)
  assert.equal(early.status, 422)
  assert.match(JSON.stringify(early.body), /unknown HTTPRouteGroup \\"the-routes\\"/)
  const deleted = await call(d.url, 'DELETE', '/v1/policy/traffictarget/path-specific', d.adminToken)
  assert.equal(deleted.status, 200, JSON.stringify(deleted.body))
})
