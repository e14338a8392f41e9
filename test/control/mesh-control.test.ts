// createMesh({ control }) against a real daemon on loopback: registration, endpoints from the
// registry, a route applied through the daemon changing the split live, ACK/NACK in status.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { applyPolicy, call, eventually, startTestDaemon } from '../helpers/daemon.js'
import { endpointsOf, hits, paymentsAndCheckout, statusOf, trafficLoop, waitEndpoints, waitSynced } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

const PAYMENTS = `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: 2s, retries: { attempts: 2 }, loadBalancer: { policy: round-robin } }
`
// Round-robin: the tests assert that both endpoints answer; peak-EWMA may favour one of two
// on a loaded machine, which is its job but not what these tests are about.
const CANARY = `apiVersion: weft/v1
kind: Route
metadata: { name: payments-canary }
spec:
  service: payments
  rules:
    - backends: [{ subset: { version: v2 }, weight: 100 }]
`

test('instances register with the daemon; a caller gets their endpoints and the policy; a Route applied mid-run moves traffic live; all SYNCED', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, PAYMENTS)).status, 200)
  const { checkout, payments } = await paymentsAndCheckout(t, d, { 'p-v1': { version: 'v1' }, 'p-v2': { version: 'v2' } })
  const [v1, v2] = [payments['p-v1'], payments['p-v2']]
  await waitEndpoints(checkout, 'payments', 2)
  assert.equal(checkout.snapshot!.lookup('payments')!.settings.timeoutMs, 2000, 'the Service policy from the daemon applies')
  const before = new Set(await hits(checkout, 'payments', 20))
  assert.deepEqual([...before].sort(), ['p-v1', 'p-v2'])

  const traffic = trafficLoop(t, checkout, 'payments')
  const applied = await applyPolicy(d, CANARY)
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  await eventually(async () => checkout.configVersion >= applied.body.version, 5000, 'checkout on the canary version')
  const after = new Set(await hits(checkout, 'payments', 20))
  assert.deepEqual([...after], ['p-v2'], 'the route sends everything to v2 now')
  const { ok, failed } = await traffic.stop()
  assert.ok(ok > 0)
  assert.deepEqual(failed, [], 'no request failed while the route changed')

  await waitSynced(d, [checkout.instanceId!, v1.mesh.instanceId!, v2.mesh.instanceId!])
  assert.equal(metricValue(await checkout.metrics(), 'weft_control_connected'), 1)
  assert.equal(metricValue(await checkout.metrics(), 'weft_config_version'), checkout.configVersion)
})

test('a view that does not compile on the instance is NACKed: status shows the error, the last good version keeps serving with no extra errors', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  await applyPolicy(d, PAYMENTS)
  const { checkout } = await paymentsAndCheckout(t, d, { p1: {} })
  await waitEndpoints(checkout, 'payments', 1)
  const good = checkout.configVersion
  const traffic = trafficLoop(t, checkout, 'payments')
  t.after(() => traffic.stop())
  // A policy the daemon's own validation would refuse, written straight into its store (as an older
  // daemon, a newer field or a hand edit of the store could): the instances must refuse it.
  const state = await d.daemon.store.readPolicy()
  const bad = { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { timeout: 'soon', retries: { attempts: 2 } } }
  await d.daemon.store.writePolicy([{ kind: 'Service', namespace: 'default', name: 'payments', value: bad }], { action: 'apply', summary: 'hand-written bad policy' }, state.version)
  const nacked = await eventually(async () => (await statusOf(d)).instances.find((i) => i.id === checkout.instanceId && i.state === 'NACKED'), 5000, 'checkout NACKED')
  assert.match(nacked.nack!.error, /Service\/payments spec\.timeout/)
  // Endpoint-only changes may still move the version on top of the last good policy (the version
  // stays NACKED), but the NACKed version itself is never applied.
  assert.notEqual(checkout.configVersion, nacked.nack!.version, 'the NACKed version is not applied')
  assert.ok(checkout.configVersion >= good)
  assert.equal(checkout.snapshot!.lookup('payments')!.settings.timeoutMs, 2000)
  assert.ok(checkout.log.lines.some((l) => l.includes('rejected (NACK)')))
  const metrics = await checkout.metrics()
  assert.ok(metricValue(metrics, 'weft_config_rejected_total', { source: 'daemon' }) >= 1)
  assert.equal(metricValue(metrics, 'weft_config_source', { source: 'daemon' }), 1, 'still the daemon\'s config (the last good version)')
  const { ok, failed } = await traffic.stop()
  assert.ok(ok > 0)
  assert.deepEqual(failed, [])

  // A good policy after it is applied and ACKed again.
  const fixed = await applyPolicy(d, PAYMENTS.replace('2s', '3s'))
  assert.equal(fixed.status, 200, JSON.stringify(fixed.body))
  await waitSynced(d, [checkout.instanceId!])
  assert.equal(checkout.snapshot!.lookup('payments')!.settings.timeoutMs, 3000)
})

test('mesh.close() deregisters at once: callers drop the endpoint without waiting for the lease', async (t) => {
  const d = await startTestDaemon({ leaseTtlMs: 60_000 })
  t.after(() => d.daemon.close())
  const { checkout, payments: { a, b } } = await paymentsAndCheckout(t, d, { a: {}, b: {} })
  await waitEndpoints(checkout, 'payments', 2)
  await b.close()
  const left = await waitEndpoints(checkout, 'payments', 1)
  assert.deepEqual(left, [`127.0.0.1:${a.port}`])
  const listed = await call(d.url, 'GET', '/v1/instances', d.adminToken)
  assert.ok(!listed.body.instances.some((i: { id: string }) => i.id === b.mesh.instanceId), 'gone from the registry')
  assert.deepEqual(endpointsOf(checkout, 'payments'), [`127.0.0.1:${a.port}`])
})
