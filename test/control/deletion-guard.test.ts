// RELIABILITY F5 (gRFC A88's resource deletion): an AuthorizationPolicy that vanishes from the
// daemon's view without a DELETE (a daemon bug, simulated by writing the store directly) never
// turns a denied call into an allowed one. By default the instance keeps the policy it applied and
// raises an ambient error (a log line, weft_config_rejected_total{source="deletion"}); with
// failOnDataErrors it refuses inbound requests (503, not ready) until the daemon's view is whole.
// A DELETE through the API is honored. Real daemon; checkout calls payments over mTLS.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { request } from 'undici'
import { applyPolicy, call, eventually, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { controlMesh, statusOf, waitEndpoints, waitSynced, type LoggedMesh } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'
import { DeletionGuard } from '../../src/control/deletion-guard.js'
import { statusTable } from '../../src/cli/status.js'
import { parseAck } from '../../src/daemon/requests.js'
import { AckSender } from '../../src/control/ack-sender.js'
import { silentLogger } from '../../src/util/logger.js'

const KEY = 'AuthorizationPolicy/default/payments-from-web'

const SERVICE = `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: 2s, retries: { attempts: 1 } }
`
// Only web may call payments: checkout is denied.
const AP = `apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: payments-from-web }
spec:
  service: payments
  action: ALLOW
  rules: [{ from: [{ principals: ["spiffe://weft.local/ns/default/sa/web"] }] }]
`

async function readyz(port: number): Promise<number> {
  const r = await request(`http://127.0.0.1:${port}/readyz`)
  await r.body.dump()
  return r.statusCode
}

async function callPayments(checkout: LoggedMesh): Promise<{ status: number; code?: string; message?: string }> {
  const res = await checkout.request('http://payments/charge')
  const text = await res.body.text()
  if (res.statusCode === 200) return { status: 200 }
  const body = JSON.parse(text) as { error: { code: string; message: string } }
  return { status: res.statusCode, code: body.error.code, message: body.error.message }
}

/** payments (meshed, serving) and checkout, both with their SVIDs and synced on the daemon's policy. */
async function setUp(t: TestContext, d: TestDaemon, paymentsExtra: Record<string, unknown> = {}): Promise<{ payments: LoggedMesh; checkout: LoggedMesh; sync(): Promise<number> }> {
  const payments = await controlMesh(d, 'payments', { inbound: { health: { port: 0, host: '127.0.0.1' } }, ...paymentsExtra })
  t.after(() => payments.close())
  await payments.listen(http.createServer((_req, res) => res.end('paid')), { port: 0, host: '127.0.0.1' })
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  for (const m of [payments, checkout]) {
    await eventually(async () => m.metrics().then((text) => /weft_certificate_expiry_timestamp_seconds\{[^}]*\} [1-9]/.test(text)), 10_000, `${m.service} has its SVID`)
  }
  await waitEndpoints(checkout, 'payments', 1)
  const sync = () => waitSynced(d, [payments.instanceId!, checkout.instanceId!])
  await sync()
  return { payments, checkout, sync }
}

/** The simulated bug: the store rewritten without the AuthorizationPolicy, marked as an apply. */
async function dropPolicyInStore(d: TestDaemon): Promise<void> {
  const state = await d.daemon.store.readPolicy()
  const rest = state.resources.filter((r) => r.kind !== 'AuthorizationPolicy')
  assert.equal(rest.length, state.resources.length - 1)
  await d.daemon.store.writePolicy(rest, { action: 'apply', summary: 'simulated bug: AuthorizationPolicy dropped' }, state.version)
}

test('an AuthorizationPolicy dropped without a DELETE is kept: the denied call stays denied, with an ambient error; a DELETE through the API is honored', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, SERVICE + '---\n' + AP)).status, 200)
  const { payments, checkout, sync } = await setUp(t, d)
  assert.deepEqual(await callPayments(checkout).then((r) => [r.status, r.code]), [403, 'WEFT_ERR_FORBIDDEN'])

  await dropPolicyInStore(d)
  await sync()
  const denied = await callPayments(checkout)
  assert.equal(denied.status, 403, 'still denied: the policy the daemon dropped is kept')
  assert.match(denied.message!, /payments-from-web/)
  const said = payments.log.lines.filter((l) => l.startsWith('error ') && l.includes(`dropped ${KEY} without deleting it`))
  assert.equal(said.length, 1, payments.log.lines.join('\n'))
  assert.ok(metricValue(await payments.metrics(), 'weft_config_rejected_total', { source: 'deletion' }) >= 1)
  assert.equal(await readyz(payments.adminAddress!.port), 200, 'kept, not failing: still ready')
  // `weft status` shows it: the instance reports what it keeps with its ACK.
  const kept = async () => Object.fromEntries((await statusOf(d)).instances.map((i) => [i.service, i.keptDeleted]))
  assert.deepEqual(await kept(), { payments: [KEY], checkout: undefined })

  // A later change still keeps it, and says so only once.
  assert.equal((await applyPolicy(d, SERVICE.replace('2s', '3s'))).status, 200)
  await sync()
  assert.equal((await callPayments(checkout)).status, 403)
  assert.equal(payments.log.lines.filter((l) => l.includes(`dropped ${KEY} without deleting it`)).length, 1)

  // Deleted properly (applied again first: the store no longer holds it): the call is allowed.
  assert.equal((await applyPolicy(d, AP)).status, 200)
  await sync()
  assert.equal((await callPayments(checkout)).status, 403)
  assert.deepEqual(await kept(), { payments: undefined, checkout: undefined }, 'in the view again: no longer kept')
  const del = await call(d.url, 'DELETE', '/v1/policy/AuthorizationPolicy/payments-from-web', d.adminToken)
  assert.equal(del.status, 200, JSON.stringify(del.body))
  await sync()
  assert.equal((await callPayments(checkout)).status, 200, 'a DELETE through the API removes the policy')
  assert.ok(payments.log.lines.some((l) => l.includes(`${KEY} is in the daemon's view again or deleted on purpose`)), payments.log.lines.join('\n'))
})

test('with failOnDataErrors the instance fails closed instead: 503 WEFT_ERR_CONTROL_UNAVAILABLE naming the policy and not ready, until the daemon\'s view has it again', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, SERVICE + '---\n' + AP)).status, 200)
  const { payments, checkout, sync } = await setUp(t, d, { failOnDataErrors: true })
  const admin = payments.adminAddress!.port
  assert.equal((await callPayments(checkout)).status, 403)
  assert.equal(await readyz(admin), 200)

  await dropPolicyInStore(d)
  await sync()
  const refused = await callPayments(checkout)
  assert.deepEqual([refused.status, refused.code], [503, 'WEFT_ERR_CONTROL_UNAVAILABLE'], JSON.stringify(refused))
  assert.match(refused.message!, new RegExp(`dropped ${KEY} without deleting it`))
  assert.equal(await readyz(admin), 503)
  assert.ok(metricValue(await payments.metrics(), 'weft_config_rejected_total', { source: 'deletion' }) >= 1)

  // The daemon's view has it again: enforced again, and ready.
  assert.equal((await applyPolicy(d, AP)).status, 200)
  await sync()
  assert.equal((await callPayments(checkout)).status, 403)
  assert.equal(await readyz(admin), 200)
})

test('DeletionGuard keeps only AuthorizationPolicy, RequestAuthentication (and SMI TrafficTarget), until the view has them again or lists them as deleted', () => {
  const r = (kind: string, name: string, spec: object = {}) => ({ apiVersion: 'weft/v1', kind, metadata: { name }, spec })
  const ap = r('AuthorizationPolicy', 'a', { action: 'DENY' })
  const ra = r('RequestAuthentication', 'jwt')
  const pa = r('PeerAuthentication', 'strict', { mtls: { mode: 'STRICT' } })
  const svc = r('Service', 'payments')
  const tt = { ...r('TrafficTarget', 'smi'), apiVersion: 'access.smi-spec.io/v1alpha3' }
  const g = new DeletionGuard()
  const view = (version: number, resources: object[], deleted?: string[]) => ({ version, resources, endpoints: {}, ...(deleted ? { deleted } : {}) })
  const smi = new DeletionGuard()
  smi.commit(smi.plan(view(1, [svc, tt])))
  assert.deepEqual([...smi.plan(view(2, [svc])).kept.keys()], ['TrafficTarget/default/smi'], 'an SMI TrafficTarget is an ALLOW policy: kept too')
  g.commit(g.plan(view(1, [svc, ap, ra, pa])))
  // Dropped without a delete: the inbound policies are kept, PeerAuthentication and Service are not.
  const p2 = g.plan(view(2, [svc]))
  assert.deepEqual([...p2.kept.keys()].sort(), ['AuthorizationPolicy/default/a', 'RequestAuthentication/default/jwt'])
  assert.deepEqual(p2.resources, [svc, ap, ra])
  // Not applied: nothing changes.
  assert.equal(g.plan(view(2, [svc])).kept.size, 2)
  assert.deepEqual(g.commit(p2), { newlyKept: ['AuthorizationPolicy/default/a', 'RequestAuthentication/default/jwt'], released: [] })
  // Still missing: still kept, not new.
  assert.deepEqual(g.commit(g.plan(view(3, [svc]))).newlyKept, [])
  // One listed as deleted, the other back (with a new value, which wins).
  const ap2 = r('AuthorizationPolicy', 'a', { action: 'ALLOW' })
  const p4 = g.plan(view(4, [svc, ap2], ['RequestAuthentication/default/jwt']))
  assert.equal(p4.kept.size, 0)
  assert.deepEqual(p4.resources, [svc, ap2])
  assert.deepEqual(g.commit(p4), { newlyKept: [], released: ['AuthorizationPolicy/default/a', 'RequestAuthentication/default/jwt'] })
  // The value kept is the one last applied.
  assert.deepEqual(g.plan(view(5, [svc])).resources, [svc, ap2])
})

test('the ACK\'s `kept` list: validated (a list of at most 1,000 short keys, absent from older instances), shown by `weft status`', () => {
  assert.deepEqual(parseAck({ version: 3 }), { version: 3 })
  assert.deepEqual(parseAck({ version: 3, kept: [] }), { version: 3, kept: [] })
  assert.deepEqual(parseAck({ version: 3, kept: [KEY, KEY] }), { version: 3, kept: [KEY] })
  assert.deepEqual(parseAck({ version: 3, error: 'bad', kept: [KEY] }), { version: 3, error: 'bad', kept: [KEY] })
  for (const kept of ['x', [1], [''], ['a'.repeat(601)], ['a\nb'], Array.from({ length: 1001 }, (_, i) => `k${i}`)]) {
    assert.throws(() => parseAck({ version: 3, kept }), /kept/, JSON.stringify(kept).slice(0, 40))
  }
  const row = { id: 'payments-1', service: 'payments', namespace: 'default', protocol: 'http', labels: {}, registeredAt: '', connected: true, state: 'SYNCED', ackedVersion: 4, sentVersion: 4 }
  const out = statusTable(4, [{ ...row, keptDeleted: [KEY] }, { ...row, id: 'payments-2' }])
  assert.match(out, /payments-1 .*SYNCED, KEEPS 1/)
  assert.match(out, /payments-1 keeps what the daemon's view dropped without a DELETE[^\n]*\n  AuthorizationPolicy\/default\/payments-from-web\n/)
  assert.doesNotMatch(out, /payments-2 keeps/)
})

test('AckSender sends `kept` only while something is kept, then once empty to clear it (a daemon older than the field refuses it)', async () => {
  const bodies: unknown[] = []
  let kept: string[] = []
  const s = new AckSender({ post: async (_r, b) => void bodies.push(b), canBeat: () => true, logger: silentLogger, onBeatFailed: () => {}, kept: () => kept })
  await s.send({ version: 1 })
  kept = [KEY]
  await s.send({ version: 2 })
  kept = []
  await s.send({ version: 3 })
  await s.send({ version: 4 })
  assert.deepEqual(bodies, [{ version: 1 }, { version: 2, kept: [KEY] }, { version: 3, kept: [] }, { version: 4 }])
})
