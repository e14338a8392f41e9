// Revocation of one identity through the daemon's API (RELIABILITY M8): admin only; stored as an
// IdentityRevocation policy resource (listed, versioned, in every instance's view, kept by a
// rollback and across a restart of the embedded store); while it stands the CA refuses the
// identity's CSRs and JWT-SVIDs with 403 WEFT_ERR_FORBIDDEN naming it and its reason; lifting it
// lets the CA sign again. Real daemon on 127.0.0.1.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createCsr, generateKeyPair } from '../../src/identity/keys.js'
import { workloadId } from '../../src/identity/spiffe-id.js'
import { applyPolicy, call, openWatch, register, SERVICE_YAML, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'

const CHECKOUT_ID = 'spiffe://weft.local/ns/default/sa/checkout'

async function csrFor(d: TestDaemon, inst: { id: string; token: string }, service: string, namespace = 'default') {
  const csr = await createCsr(await generateKeyPair(), workloadId('weft.local', namespace, service))
  return call(d.url, 'POST', `/v1/instances/${inst.id}/svid`, inst.token, { csr })
}

test('revocation calls need the admin credential: 401 without a token, 403 with a join or instance token', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const inst = await register(d, { service: 'checkout' })
  const calls = [
    ['GET', '/v1/revocations', undefined],
    ['POST', '/v1/revocations', { service: 'checkout', reason: 'x' }],
    ['DELETE', '/v1/revocations/default/checkout', undefined],
  ] as const
  for (const [method, path, body] of calls) {
    assert.equal((await call(d.url, method, path, undefined, body)).status, 401, `${method} ${path} anonymous`)
    const join = await call(d.url, method, path, d.joinToken, body)
    assert.equal(join.status, 403, `${method} ${path} join token`)
    assert.equal(join.body.error.code, 'WEFT_ERR_FORBIDDEN')
    assert.equal((await call(d.url, method, path, inst.token, body)).status, 403, `${method} ${path} instance token`)
  }
  assert.deepEqual((await call(d.url, 'GET', '/v1/revocations', d.adminToken)).body.revocations, [], 'nothing was revoked by the refused calls')
})

test('revoke by service: listed, pushed to other services\' views, CSRs and JWT-SVIDs of the identity refused 403 naming it and the reason; others signed; unrevoke signs again', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, SERVICE_YAML)).status, 200)
  const checkout = await register(d, { service: 'checkout' })
  const payments = await register(d, { service: 'payments', address: '127.0.0.1', port: 9 })
  assert.equal((await csrFor(d, checkout, 'checkout')).status, 200, 'signed before the revocation')
  const watch = await openWatch(d.url, payments.id, payments.token)
  t.after(() => watch.close())
  const first = await watch.next()
  assert.equal(first.type, 'snapshot')

  const revoked = await call(d.url, 'POST', '/v1/revocations', d.adminToken, { service: 'checkout', reason: 'key leaked in INC-42' })
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body))
  assert.equal(revoked.body.action, 'created')
  assert.equal(revoked.body.revocation.spiffeId, CHECKOUT_ID)
  assert.ok(Number.isFinite(Date.parse(revoked.body.revocation.revokedAt)))

  const list = await call(d.url, 'GET', '/v1/revocations', d.adminToken)
  assert.deepEqual(list.body.revocations.map((r: { spiffeId: string; reason: string }) => [r.spiffeId, r.reason]), [[CHECKOUT_ID, 'key leaked in INC-42']])
  // payments' view (another service's scope) gets the revocation, as a policy change.
  const pushed = await watch.next()
  assert.equal(pushed.type, 'policy')
  const inView = (pushed as { resources: { kind: string; metadata: { name: string }; spec: { spiffeId: string } }[] }).resources.filter((r) => r.kind === 'IdentityRevocation')
  assert.deepEqual(inView.map((r) => r.spec.spiffeId), [CHECKOUT_ID])

  const refused = await csrFor(d, checkout, 'checkout')
  assert.equal(refused.status, 403)
  assert.equal(refused.body.error.code, 'WEFT_ERR_FORBIDDEN')
  assert.match(refused.body.error.message, /spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout is revoked \(reason: key leaked in INC-42/)
  assert.equal(refused.body.error.details.revoked, CHECKOUT_ID)
  const jwt = await call(d.url, 'POST', `/v1/instances/${checkout.id}/jwt-svid`, checkout.token, { audience: 'payments' })
  assert.equal(jwt.status, 403)
  assert.match(jwt.body.error.message, /no JWT-SVID is signed for it/)
  assert.equal((await csrFor(d, payments, 'payments')).status, 200, 'another identity is still signed')

  // Revoking again updates the reason and keeps the first time.
  const again = await call(d.url, 'POST', '/v1/revocations', d.adminToken, { spiffeId: CHECKOUT_ID, reason: 'key leaked in INC-42 (confirmed)' })
  assert.equal(again.body.action, 'updated')
  assert.equal(again.body.revocation.revokedAt, revoked.body.revocation.revokedAt)

  const lifted = await call(d.url, 'DELETE', '/v1/revocations/default/checkout', d.adminToken)
  assert.equal(lifted.status, 200, JSON.stringify(lifted.body))
  assert.equal(lifted.body.lifted.spiffeId, CHECKOUT_ID)
  assert.equal((await csrFor(d, checkout, 'checkout')).status, 200, 'signed again once lifted')
  assert.equal((await call(d.url, 'DELETE', '/v1/revocations/default/checkout', d.adminToken)).status, 404)
})

test('bad revocation requests are 400 naming the field: no reason, both or neither of spiffeId and service, another trust domain, not a workload ID', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ service: 'checkout' }, /reason is required/],
    [{ service: 'checkout', reason: 'two\nlines' }, /reason is required/],
    [{ reason: 'x' }, /either spiffeId or service/],
    [{ service: 'checkout', spiffeId: CHECKOUT_ID, reason: 'x' }, /either spiffeId or service/],
    [{ spiffeId: 'spiffe://other.example/ns/default/sa/checkout', reason: 'x' }, /not a workload identity this daemon signs for/],
    [{ spiffeId: 'spiffe://weft.local/checkout', reason: 'x' }, /not a workload identity/],
    [{ spiffeId: 'https://weft.local/ns/default/sa/checkout', reason: 'x' }, /invalid SPIFFE ID/],
    [{ service: 'Checkout!', reason: 'x' }, /service must be a service name/],
    [{ service: 'checkout', reason: 'x', extra: 1 }, /unknown field "extra"/],
  ]
  for (const [body, message] of bad) {
    const r = await call(d.url, 'POST', '/v1/revocations', d.adminToken, body)
    assert.equal(r.status, 400, JSON.stringify(body))
    assert.match(r.body.error.message, message)
  }
  assert.deepEqual((await call(d.url, 'GET', '/v1/revocations', d.adminToken)).body.revocations, [])
})

test('a revocation survives a daemon restart (embedded store) and a rollback to a version before it', async (t) => {
  const first = await startTestDaemon()
  const dataDir = first.dataDir
  const before = (await applyPolicy(first, SERVICE_YAML)).body.version as number
  const r = await call(first.url, 'POST', '/v1/revocations', first.adminToken, { service: 'checkout', namespace: 'shop', reason: 'decommissioned' })
  assert.equal(r.status, 200)
  await first.daemon.close()

  const d = await startTestDaemon({ dataDir })
  t.after(() => d.daemon.close())
  const listed = await call(d.url, 'GET', '/v1/revocations', d.adminToken)
  assert.deepEqual(listed.body.revocations.map((x: { spiffeId: string }) => x.spiffeId), ['spiffe://weft.local/ns/shop/sa/checkout'])
  const inst = await register(d, { service: 'checkout', namespace: 'shop' })
  const refused = await csrFor(d, inst, 'checkout', 'shop')
  assert.equal(refused.status, 403)
  assert.match(refused.body.error.message, /reason: decommissioned/)

  const rolled = await call(d.url, 'POST', '/v1/rollback', d.adminToken, { version: before })
  assert.equal(rolled.status, 200, JSON.stringify(rolled.body))
  assert.equal((await call(d.url, 'GET', '/v1/revocations', d.adminToken)).body.revocations.length, 1, 'the rollback kept the revocation')
  assert.equal((await csrFor(d, inst, 'checkout', 'shop')).status, 403)
})
