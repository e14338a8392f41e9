// RELIABILITY F5, the daemon's half: policy views list the resources removed on purpose
// (`deleted`), so an instance can tell a DELETE or a rollback from a resource the daemon dropped by
// mistake. Real daemon, raw watch streams.
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { PolicyMessage, SnapshotMessage } from '../../src/control/protocol.js'
import { applyPolicy, call, openWatch, register, startTestDaemon, type WatchStream } from '../helpers/daemon.js'
import { AP, AP_KEY, SERVICE } from '../helpers/deletion-fixtures.js'

const ROUTE = `apiVersion: weft/v1
kind: Route
metadata: { name: payments-all }
spec:
  service: payments
  rules: [{ backends: [{ subset: { version: v1 }, weight: 100 }] }]
`

/** The next snapshot or policy message (endpoint deltas skipped). */
async function nextPolicy(w: WatchStream): Promise<SnapshotMessage | PolicyMessage> {
  for (;;) {
    const m = await w.next()
    if (m.type === 'snapshot' || m.type === 'policy') return m
  }
}

/** A daemon holding payments and its AuthorizationPolicy, a payments instance's watch on it, and the first view. */
async function paymentsWatching(t: TestContext) {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, SERVICE + '---\n' + AP())).status, 200)
  const payments = await register(d, { service: 'payments' })
  const w = await openWatch(d.url, payments.id, payments.token)
  t.after(() => w.close())
  return { d, payments, w, first: await nextPolicy(w) }
}

test('DELETE and rollback list what they removed in `deleted`; an apply (or a store write marked apply) never does; a new stream\'s snapshot lists recent deletions of its scope only', async (t) => {
  const { d, w, first } = await paymentsWatching(t)
  assert.equal(first.type, 'snapshot')
  assert.ok(first.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'))
  assert.equal(first.deleted, undefined, 'nothing deleted yet')

  // DELETE through the API: the pushed view lists it.
  const del = await call(d.url, 'DELETE', '/v1/policy/AuthorizationPolicy/payments-from-web', d.adminToken)
  assert.equal(del.status, 200, JSON.stringify(del.body))
  const afterDelete = await nextPolicy(w)
  assert.ok(!afterDelete.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'))
  assert.deepEqual(afterDelete.deleted, [AP_KEY])

  // A new stream (a reconnecting instance that missed it) gets a snapshot listing it; an instance
  // of another service does not see payments' inbound policy names.
  const late = await register(d, { service: 'payments' })
  const again = await openWatch(d.url, late.id, late.token)
  t.after(() => again.close())
  const snap = await nextPolicy(again)
  assert.equal(snap.type, 'snapshot')
  assert.deepEqual(snap.deleted, [AP_KEY])
  again.close()
  const checkout = await register(d, { service: 'checkout' })
  const other = await openWatch(d.url, checkout.id, checkout.token)
  t.after(() => other.close())
  const otherSnap = await nextPolicy(other)
  assert.equal(otherSnap.deleted, undefined, 'another service\'s scope does not list payments\' AuthorizationPolicy')
  other.close()

  // Applied again: no longer deleted (neither in the delta nor in a later snapshot).
  assert.equal((await applyPolicy(d, AP())).status, 200)
  const readded = await nextPolicy(w)
  assert.ok(readded.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'))
  assert.equal(readded.deleted, undefined)
  const withAp = (await call(d.url, 'GET', '/v1/policy', d.adminToken)).body.version as number

  // An apply never removes; a store write marked apply that drops it (the simulated bug) lists nothing.
  assert.equal((await applyPolicy(d, ROUTE)).status, 200)
  assert.equal((await nextPolicy(w)).deleted, undefined)
  const state = await d.daemon.store.readPolicy()
  assert.equal(state.action, 'apply')
  await d.daemon.store.writePolicy(state.resources.filter((r) => r.kind !== 'AuthorizationPolicy'), { action: 'apply', summary: 'simulated bug' }, state.version)
  const dropped = await nextPolicy(w)
  assert.ok(!dropped.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'))
  assert.equal(dropped.deleted, undefined, 'a removal by a write marked apply is not a deletion')
  assert.equal((await d.daemon.store.readPolicy()).action, 'apply')

  // Rollback to the version with the policy (it comes back), then to one without the Route: it lists the Route.
  const back = await call(d.url, 'POST', '/v1/rollback', d.adminToken, { version: withAp })
  assert.equal(back.status, 200, JSON.stringify(back.body))
  const rolled = await nextPolicy(w)
  assert.ok(rolled.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'))
  assert.deepEqual(rolled.deleted, ['Route/default/payments-all'])
  assert.equal((await d.daemon.store.readPolicy()).action, 'rollback')
})

test('an AuthorizationPolicy moved to another service by an apply is listed as deleted for the scope it left', async (t) => {
  const { d, w, first } = await paymentsWatching(t)
  assert.ok(first.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'))
  assert.equal((await applyPolicy(d, AP('ledger'))).status, 200)
  const moved = await nextPolicy(w)
  assert.ok(!moved.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'), 'no longer in payments\' view')
  assert.deepEqual(moved.deleted, [AP_KEY])
  // Back to payments: in the view again and no longer listed.
  assert.equal((await applyPolicy(d, AP())).status, 200)
  const back = await nextPolicy(w)
  assert.ok(back.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'))
  assert.equal(back.deleted, undefined)
})
