// An instance under a control daemon with no policy of the daemon's to enforce — its first view was
// rejected, or the daemon did not answer, and there is no cached snapshot — starts (static
// stability), but refuses inbound requests and is not ready until the daemon's policy applies. It
// is never served without the policy that may restrict it (RELIABILITY F2b, S7; CVE-2022-21679
// was a version skew that widened access). Real daemon and meshes on loopback.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { applyPolicy, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitSynced } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

/** A policy the daemon's own validation would refuse, as an older daemon, a newer field or a hand edit of the store could hold. */
const BAD_SERVICE = { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { timeout: 'soon' } }

const GOOD = `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: 2s }
---
apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: payments-from-checkout }
spec:
  service: payments
  action: ALLOW
  rules: [{ from: [{ principals: ["spiffe://weft.local/ns/default/sa/checkout"] }] }]
`

async function readyz(port: number): Promise<number> {
  const r = await request(`http://127.0.0.1:${port}/readyz`)
  await r.body.dump()
  return r.statusCode
}

test('first view rejected and no cache: inbound requests are refused (503 WEFT_ERR_CONTROL_UNAVAILABLE) and /readyz is 503 until the daemon\'s policy applies, which is then enforced', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const state = await d.daemon.store.readPolicy()
  await d.daemon.store.writePolicy([{ kind: 'Service', namespace: 'default', name: 'payments', value: BAD_SERVICE }], { action: 'apply', summary: 'hand-written bad policy' }, state.version)

  // payments: its first view is NACKed; it has no cache (no stateDir), so it starts on the fallback.
  const payments = await controlMesh(d, 'payments', { controlTimeoutMs: 300, inbound: { health: { port: 0, host: '127.0.0.1' } } })
  t.after(() => payments.close())
  const server = http.createServer((_req, res) => res.end('paid'))
  const { port } = (await payments.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  assert.ok(payments.log.lines.some((l) => l.includes('rejected (NACK)')), payments.log.lines.join('\n'))
  assert.ok(payments.log.lines.some((l) => l.includes('refusing inbound requests (not ready)')), payments.log.lines.join('\n'))
  const admin = payments.adminAddress!.port
  assert.equal(await readyz(admin), 503, 'not ready without the daemon\'s policy')
  let metrics = await payments.metrics()
  assert.equal(metricValue(metrics, 'weft_config_source', { source: 'none' }), 1)
  assert.ok(metricValue(metrics, 'weft_config_rejected_total', { source: 'daemon' }) >= 1)

  // checkout: also on its fallback, whose static config reaches payments over mTLS with its SVID
  // (its certificate comes from the daemon whatever its views).
  const checkout = await controlMesh(d, 'checkout', {
    controlTimeoutMs: 300,
    config: [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { retries: { attempts: 1 }, endpoints: [{ address: `127.0.0.1:${port}`, mtls: true }] } }],
  })
  t.after(() => checkout.close())
  // Both have their certificates (the daemon signs them whatever the views) before the calls.
  await eventually(async () => payments.metrics().then((m) => /weft_certificate_expiry_timestamp_seconds\{[^}]*\} [1-9]/.test(m)), 10_000, 'payments has its SVID')
  await eventually(async () => checkout.metrics().then((m) => /weft_certificate_expiry_timestamp_seconds\{[^}]*\} [1-9]/.test(m)), 10_000, 'checkout has its SVID')

  const refused = await checkout.request('http://payments/charge')
  const body = (await refused.body.json()) as { error: { code: string; message: string } }
  assert.equal(refused.statusCode, 503, JSON.stringify(body))
  assert.equal(body.error.code, 'WEFT_ERR_CONTROL_UNAVAILABLE')
  assert.match(body.error.message, /no policy from the control daemon yet/)

  // The daemon gets a good policy (one that admits checkout): payments applies it, is ready, and serves.
  assert.equal((await applyPolicy(d, GOOD)).status, 200)
  await waitSynced(d, [payments.instanceId!, checkout.instanceId!])
  assert.equal(await readyz(admin), 200)
  metrics = await payments.metrics()
  assert.equal(metricValue(metrics, 'weft_config_source', { source: 'daemon' }), 1)
  assert.equal(metricValue(metrics, 'weft_config_source', { source: 'none' }), 0)
  const served = await checkout.request('http://payments/charge')
  assert.equal(served.statusCode, 200)
  assert.equal(await served.body.text(), 'paid')
})

test('cold start with the daemon down and no cache: the instance starts but is not ready; once the daemon answers it is', async (t) => {
  const d = await startTestDaemon()
  const { url, joinToken, dataDir } = d
  const daemonPort = d.daemon.port
  await d.daemon.close()
  const payments = await controlMesh({ url, joinToken }, 'payments', { controlTimeoutMs: 200, inbound: { health: { port: 0, host: '127.0.0.1' } } })
  t.after(() => payments.close())
  await payments.listen(http.createServer((_req, res) => res.end('paid')), { port: 0, host: '127.0.0.1' })
  assert.equal(await readyz(payments.adminAddress!.port), 503)

  const again = await startTestDaemon({ dataDir, listen: `127.0.0.1:${daemonPort}` })
  t.after(() => again.daemon.close())
  await eventually(async () => (await readyz(payments.adminAddress!.port)) === 200, 15_000, 'ready once the daemon\'s first view applies')
})
