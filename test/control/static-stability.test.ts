// test: serial (a daemon restarted under traffic must see its instances back within the restored lease; scripts/run-tests.mjs runs it alone)
// Static stability: the data plane never depends on the daemon being up. Real daemons and meshes
// on loopback; outage windows are short and bounded (the logic is the same as for 60 s).
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { applyPolicy, call, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, endpointsOf, hits, paymentsAndCheckout, servingInstance, trafficLoop, waitEndpoints, waitSynced } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

const PAYMENTS = `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: 2s }
`

// The instance's key never leaves its process (identity issue), so a cold start with the daemon
// down has no certificate: mTLS to a STRICT service fails closed (next test); a PERMISSIVE one is
// served in plaintext from the cached view.
const PERMISSIVE = `---
apiVersion: weft/v1
kind: PeerAuthentication
metadata: { name: payments-permissive }
spec: { service: payments, mtls: PERMISSIVE }
`

async function coldStart(t: TestContext, policy: string) {
  const d = await startTestDaemon()
  const stateDir = mkdtempSync(join(tmpdir(), 'weft-state-'))
  await applyPolicy(d, policy)
  const p = await servingInstance(d, 'payments', 'p1')
  t.after(() => p.close())
  const first = await controlMesh(d, 'checkout', { stateDir })
  await waitEndpoints(first, 'payments', 1)
  const version = first.configVersion
  await first.close()
  await d.daemon.close()
  const cold = await controlMesh({ url: d.url, joinToken: d.joinToken }, 'checkout', { stateDir, controlTimeoutMs: 300 })
  t.after(() => cold.close())
  return { cold, version }
}

test('cold start with the daemon down and STRICT mTLS: config from the cache, but calls fail closed with a clear error until the daemon signs a certificate', async (t) => {
  const { cold, version } = await coldStart(t, PAYMENTS)
  assert.equal(cold.configVersion, version)
  assert.equal(cold.identity.current(), undefined)
  await assert.rejects(cold.request('http://payments/'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'WEFT_ERR_UNAUTHENTICATED')
    assert.match(err.message, /requires mTLS \(STRICT\) and this instance \(checkout\) has no certificate yet/)
    return true
  })
})

test('cold start with the daemon down: the instance serves from its cached snapshot and says so', async (t) => {
  const d = await startTestDaemon()
  const stateDir = mkdtempSync(join(tmpdir(), 'weft-state-'))
  await applyPolicy(d, PAYMENTS + PERMISSIVE)
  const p = await servingInstance(d, 'payments', 'p1')
  t.after(() => p.close())
  const first = await controlMesh(d, 'checkout', { stateDir })
  await waitEndpoints(first, 'payments', 1)
  const version = first.configVersion
  await first.close()
  const cached = JSON.parse(readFileSync(join(stateDir, 'control-checkout.json'), 'utf8'))
  assert.equal(cached.view.version, version)
  await d.daemon.close()

  const cold = await controlMesh({ url: d.url, joinToken: d.joinToken }, 'checkout', { stateDir, controlTimeoutMs: 300 })
  t.after(() => cold.close())
  assert.equal(cold.configVersion, version, 'started from the cached version')
  assert.ok(cold.log.lines.some((l) => l.includes(`serving cached snapshot version ${version}`)), cold.log.lines.join('\n'))
  assert.equal(metricValue(await cold.metrics(), 'weft_config_source', { source: 'cache' }), 1, 'the metric says where the config came from (F2a)')
  assert.equal(metricValue(await cold.metrics(), 'weft_control_connected'), 0)
  assert.deepEqual(await hits(cold, 'payments', 5), ['p1', 'p1', 'p1', 'p1', 'p1'], 'serves from the cache')
})

test('cold start with the daemon down and no cache: createMesh still resolves (static config or nothing) and connects later', async (t) => {
  const d = await startTestDaemon()
  const url = d.url
  const port = d.daemon.port
  await d.daemon.close()
  const m = await controlMesh({ url, joinToken: d.joinToken }, 'checkout', { controlTimeoutMs: 200 })
  t.after(() => m.close())
  assert.ok(m.log.lines.some((l) => l.includes('no cached snapshot')), m.log.lines.join('\n'))
  const again = await startTestDaemon({ dataDir: d.dataDir, listen: `127.0.0.1:${port}` })
  t.after(() => again.daemon.close())
  await applyPolicy(again, PAYMENTS)
  await eventually(async () => m.snapshot?.lookup('payments') !== undefined, 10_000, 'the late daemon\'s policy applied')
  assert.equal(metricValue(await m.metrics(), 'weft_control_connected'), 1)
})

test('daemon down while traffic flows: 0 failed requests, policy unchanged; daemon back: every instance resyncs', async (t) => {
  const d = await startTestDaemon({ leaseTtlMs: 1000 })
  await applyPolicy(d, PAYMENTS)
  const { checkout, payments: { a, b } } = await paymentsAndCheckout(t, d, { a: {}, b: {} })
  await waitEndpoints(checkout, 'payments', 2)
  const policyBefore = (await call(d.url, 'GET', '/v1/policy', d.adminToken)).body.resources
  const traffic = trafficLoop(t, checkout, 'payments')
  await d.daemon.close()
  // Longer than the lease TTL: with no daemon, nothing may expire on the instances' side.
  await new Promise((r) => setTimeout(r, 1500))
  assert.equal(endpointsOf(checkout, 'payments').length, 2, 'the caller keeps its endpoints while the daemon is away')
  assert.equal(metricValue(await checkout.metrics(), 'weft_control_connected'), 0)
  const back = await startTestDaemon({ dataDir: d.dataDir, listen: `127.0.0.1:${d.daemon.port}`, leaseTtlMs: 1000 })
  t.after(() => back.daemon.close())
  await waitSynced(back, [checkout.instanceId!, a.mesh.instanceId!, b.mesh.instanceId!], 15_000)
  await waitEndpoints(checkout, 'payments', 2)
  const { ok, failed } = await traffic.stop()
  assert.ok(ok > 50, `traffic flowed (${ok})`)
  assert.deepEqual(failed, [], 'no request failed across the outage and the resync')
  assert.deepEqual((await call(back.url, 'GET', '/v1/policy', back.adminToken)).body.resources, policyBefore, 'policy unchanged')
  assert.equal(metricValue(await checkout.metrics(), 'weft_control_connected'), 1)
})

test('an instance killed (SIGKILL) leaves every snapshot within the lease TTL; callers stop sending to it', async (t) => {
  const d = await startTestDaemon({ leaseTtlMs: 800 })
  t.after(() => d.daemon.close())
  // Round-robin: every endpoint gets its turn, so the doomed one is certainly being called.
  await applyPolicy(d, PAYMENTS.replace('timeout: 2s', 'timeout: 2s, loadBalancer: { policy: round-robin }'))
  const { checkout, payments: { live } } = await paymentsAndCheckout(t, d, { live: {} })
  const child = fork(fileURLToPath(new URL('../fixtures/control-instance.ts', import.meta.url)), [d.url, d.joinToken, 'payments', 'doomed'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  t.after(() => child.kill('SIGKILL'))
  const { port } = await new Promise<{ port: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { port: number }))
    child.once('exit', (code) => reject(new Error(`instance exited ${code}`)))
  })
  await waitEndpoints(checkout, 'payments', 2)
  assert.ok((await hits(checkout, 'payments', 20)).includes('doomed'))
  child.kill('SIGKILL')
  const killedAt = Date.now()
  const left = await waitEndpoints(checkout, 'payments', 1, 10_000)
  assert.deepEqual(left, [`127.0.0.1:${live.port}`])
  // Bounded by the TTL plus the coalescing window and a push; generous for a loaded machine.
  assert.ok(Date.now() - killedAt < 800 + 4000, `removed ${Date.now() - killedAt} ms after the kill`)
  assert.deepEqual([...new Set(await hits(checkout, 'payments', 20))], ['live'])
  assert.ok(!endpointsOf(checkout, 'payments').includes(`127.0.0.1:${port}`))
})
