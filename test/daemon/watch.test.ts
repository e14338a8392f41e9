// test: serial (leases of 300 ms: a stream is dropped after 300 ms without a heartbeat; scripts/run-tests.mjs runs it alone)
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { EndpointsMessage, PolicyMessage, SnapshotMessage } from '../../src/control/protocol.js'
import { applyPolicy, call, eventually, openWatch, register, SERVICE_YAML, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'

async function withDaemon(fn: (t: TestDaemon) => Promise<void>, opts: Parameters<typeof startTestDaemon>[0] = {}): Promise<void> {
  const t = await startTestDaemon(opts)
  try {
    await fn(t)
  } finally {
    await t.daemon.close()
  }
}

test('register + watch: the first message is a snapshot with the policy and the instance\'s own endpoint', () => withDaemon(async (t) => {
  await applyPolicy(t, SERVICE_YAML)
  const inst = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081, protocol: 'http', labels: { version: 'v1' }, locality: { zone: 'a' } })
  assert.equal(inst.leaseTtlMs, 10_000)
  const w = await openWatch(t.url, inst.id, inst.token)
  try {
    assert.equal(w.status, 200)
    const snap = (await w.next()) as SnapshotMessage
    assert.equal(snap.type, 'snapshot')
    assert.deepEqual(snap.resources.map((r) => (r as { kind: string }).kind), ['Service'])
    assert.deepEqual(snap.endpoints, { 'default/payments': [{ address: '127.0.0.1:8081', protocol: 'http', labels: { version: 'v1', zone: 'a' }, instance: inst.id }] })
    assert.equal(snap.version, (await call(t.url, 'GET', '/healthz')).body.version)
  } finally {
    w.close()
  }
}))

test('a second registration reaches a watcher as an endpoints delta with base, holding the full list', () => withDaemon(async (t) => {
  const a = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
  const w = await openWatch(t.url, a.id, a.token)
  try {
    const snap = (await w.next()) as SnapshotMessage
    const b = await register(t, { service: 'payments', address: '127.0.0.1', port: 8082 })
    const delta = (await w.next()) as EndpointsMessage
    assert.equal(delta.type, 'endpoints')
    assert.equal(delta.base, snap.version)
    assert.ok(delta.version > snap.version)
    assert.deepEqual(delta.endpoints['default/payments']!.map((e) => e.instance).sort(), [a.id, b.id].sort())
    // The last instance of a service leaving is an empty list.
    const c = await register(t, { service: 'ledger', address: '127.0.0.1', port: 9000, protocol: 'grpc' })
    const added = (await w.next()) as EndpointsMessage
    assert.deepEqual(Object.keys(added.endpoints), ['default/ledger'])
    assert.equal((await call(t.url, 'DELETE', `/v1/instances/${c.id}`, c.token)).status, 200)
    const gone = (await w.next()) as EndpointsMessage
    assert.equal(gone.base, added.version)
    assert.deepEqual(gone.endpoints, { 'default/ledger': [] })
    // A policy change on top of the version held: the resources, and no endpoints resent.
    await applyPolicy(t, SERVICE_YAML)
    const again = (await w.next()) as PolicyMessage
    assert.equal(again.type, 'policy')
    assert.equal(again.base, gone.version)
    assert.equal(again.resources.length, 1)
    assert.deepEqual(again.endpoints, {}, 'unchanged endpoints are not resent')
  } finally {
    w.close()
  }
}))

test('a burst of 20 registrations in one coalesce window reaches a watcher as very few messages, complete', () => withDaemon(async (t) => {
  const first = await register(t, { service: 'payments', address: '127.0.0.1', port: 8000 })
  const w = await openWatch(t.url, first.id, first.token)
  try {
    const snap = (await w.next()) as SnapshotMessage
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => register(t, { service: 'payments', address: '127.0.0.1', port: 8001 + i })))
    // Read until the view holds all 21, applying deltas the way an instance does.
    let endpoints = { ...snap.endpoints }
    let version = snap.version
    let messages = 0
    while ((endpoints['default/payments']?.length ?? 0) < 21) {
      const m = await w.next()
      messages++
      if (m.type === 'snapshot') endpoints = { ...m.endpoints }
      else if (m.type === 'endpoints') {
        assert.equal(m.base, version, 'each delta applies on top of the previous version')
        endpoints = { ...endpoints, ...m.endpoints }
      }
      version = m.version
    }
    assert.ok(messages < 20, `${messages} messages for 20 registrations`)
    assert.deepEqual(endpoints['default/payments']!.map((e) => e.instance).sort(), [first.id, ...burst.map((b) => b.id)].sort())
  } finally {
    w.close()
  }
}, { coalesceMs: 200 }))

test('watch with ?version=current sends no snapshot until a change', () => withDaemon(async (t) => {
  const a = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
  const w1 = await openWatch(t.url, a.id, a.token)
  const snap = (await w1.next()) as SnapshotMessage
  w1.close()
  const w = await openWatch(t.url, a.id, a.token, snap.version)
  try {
    assert.equal(w.status, 200)
    // Pings arrive (every leaseTtl/3 = 100 ms here), but no snapshot.
    const ping = await w.next(3000, true)
    assert.equal(ping.type, 'ping')
    assert.equal(ping.version, snap.version)
    assert.equal(await w.maybeNext(300), undefined)
    await register(t, { service: 'payments', address: '127.0.0.1', port: 8082 })
    const delta = await w.next()
    assert.equal(delta.type, 'endpoints')
    assert.equal((delta as EndpointsMessage).base, snap.version)
  } finally {
    w.close()
  }
  // An old or unknown version gets a snapshot at once.
  const w3 = await openWatch(t.url, a.id, a.token, snap.version - 1)
  try {
    assert.equal((await w3.next()).type, 'snapshot')
  } finally {
    w3.close()
  }
}, { leaseTtlMs: 300 }))

test('ACK → SYNCED, NACK → NACKED with the error; a closed stream → DISCONNECTED', () => withDaemon(async (t) => {
  const a = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
  const w = await openWatch(t.url, a.id, a.token)
  const status = async () => ((await call(t.url, 'GET', '/v1/status', t.adminToken)).body.instances as { id: string; state: string; ackedVersion?: number; sentVersion?: number; nack?: { version: number; error: string }; lastSeen?: string }[]).find((i) => i.id === a.id)!
  try {
    const snap = await w.next()
    assert.equal((await status()).state, 'STALE', 'sent, not acknowledged yet')
    assert.equal((await call(t.url, 'POST', `/v1/instances/${a.id}/ack`, a.token, { version: snap.version })).status, 200)
    const synced = await status()
    assert.equal(synced.state, 'SYNCED')
    assert.equal(synced.ackedVersion, snap.version)
    assert.equal(synced.sentVersion, snap.version)
    assert.ok(synced.lastSeen)

    await register(t, { service: 'payments', address: '127.0.0.1', port: 8082 })
    const delta = await w.next()
    const error = 'Service/payments spec.endpoints[1].address: must be host:port'
    await call(t.url, 'POST', `/v1/instances/${a.id}/ack`, a.token, { version: delta.version, error })
    const nacked = await status()
    assert.equal(nacked.state, 'NACKED')
    assert.deepEqual(nacked.nack, { version: delta.version, error })
    assert.equal(nacked.ackedVersion, snap.version)
  } finally {
    w.close()
  }
  await eventually(async () => (await status()).state === 'DISCONNECTED', 5000, 'DISCONNECTED after the stream closed')
}))

test('lease: after the watch closes the instance is gone within the TTL; DELETE removes at once', () => withDaemon(async (t) => {
  const instances = async () => ((await call(t.url, 'GET', '/v1/instances', t.adminToken)).body.instances as { id: string }[]).map((i) => i.id)
  const a = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
  const w = await openWatch(t.url, a.id, a.token)
  await w.next()
  // Held while the stream is open, well past the TTL.
  await new Promise((r) => setTimeout(r, 700))
  assert.deepEqual(await instances(), [a.id])
  w.close()
  await eventually(async () => (await instances()).length === 0, 5000, 'instance expired')
  // Its instance token is now unknown (401, as for any unknown instance token): register again.
  const gone = await openWatch(t.url, a.id, a.token)
  assert.equal(gone.status, 401)
  gone.close()

  // Never watched: it expires too.
  const b = await register(t, { service: 'payments', address: '127.0.0.1', port: 8082 })
  assert.deepEqual(await instances(), [b.id])
  await eventually(async () => (await instances()).length === 0, 5000, 'unwatched registration expired')

  // DELETE: gone at once, and its open stream is ended.
  const c = await register(t, { service: 'payments', address: '127.0.0.1', port: 8083 })
  const wc = await openWatch(t.url, c.id, c.token)
  await wc.next()
  assert.equal((await call(t.url, 'DELETE', `/v1/instances/${c.id}`, c.token)).status, 200)
  assert.deepEqual(await instances(), [])
  await wc.waitEnd()
}, { leaseTtlMs: 300 }))

test('PUT /v1/instances/:id: a client-only instance starts serving and becomes an endpoint', () => withDaemon(async (t) => {
  const a = await register(t, { service: 'payments' })
  const w = await openWatch(t.url, a.id, a.token)
  try {
    const snap = (await w.next()) as SnapshotMessage
    assert.deepEqual(snap.endpoints, {}, 'client only: not an endpoint')
    const put = await call(t.url, 'PUT', `/v1/instances/${a.id}`, a.token, { address: '127.0.0.1', port: 8443, protocol: 'grpc' })
    assert.equal(put.status, 200)
    assert.equal(put.body.port, 8443)
    const delta = (await w.next()) as EndpointsMessage
    assert.deepEqual(delta.endpoints['default/payments']!.map((e) => [e.address, e.protocol]), [['127.0.0.1:8443', 'grpc']])
    const services = (await call(t.url, 'GET', '/v1/services', t.adminToken)).body.services
    assert.deepEqual(services, [{ name: 'payments', namespace: 'default', protocol: 'grpc', source: 'registry', endpoints: 1 }])
    const eps = (await call(t.url, 'GET', '/v1/endpoints', t.adminToken)).body.endpoints
    assert.equal(eps['default/payments'][0].instance, a.id)
    const snapshot = (await call(t.url, 'GET', '/v1/snapshot?service=payments', t.adminToken)).body
    assert.equal(snapshot.version, delta.version)
    assert.equal(snapshot.composed[0].spec.endpoints[0].address, '127.0.0.1:8443')
  } finally {
    w.close()
  }
}))

test('close() ends open watch streams', async () => {
  const t = await startTestDaemon()
  const a = await register(t, { service: 'payments' })
  const w = await openWatch(t.url, a.id, a.token)
  await w.next()
  await t.daemon.close()
  await w.waitEnd()
})
