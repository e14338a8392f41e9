// Namespaces end to end: the registry is keyed "<namespace>/<name>", so an instance registered with
// a team-a join token never becomes an endpoint of default/payments — neither in what watchers are
// pushed nor in the composed views — and a registry-only service lives in its registrations' namespace.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { SnapshotMessage } from '../../src/control/protocol.js'
import { applyPolicy, call, eventually, openWatch, register, SERVICE_YAML, startTestDaemon } from '../helpers/daemon.js'

test('a team-a registration of "payments" does not feed default/payments; it is reported as left out', async () => {
  const t = await startTestDaemon({ coalesceMs: 5 })
  try {
    assert.equal((await applyPolicy(t, SERVICE_YAML)).status, 200)
    const good = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
    const tok = (await call(t.url, 'POST', '/v1/tokens', t.adminToken, { services: ['payments'], namespace: 'team-a' })).body.token as string
    const evil = await register(t, { service: 'payments', namespace: 'team-a', address: '127.0.0.1', port: 6666 }, tok)
    const w = await openWatch(t.url, good.id, good.token)
    try {
      const snap = (await w.next()) as SnapshotMessage
      assert.deepEqual(Object.keys(snap.endpoints).sort(), ['default/payments', 'team-a/payments'])
      assert.deepEqual(snap.endpoints['default/payments']!.map((e) => e.instance), [good.id])
    } finally {
      w.close()
    }
    const view = await eventually(async () => {
      const v = (await call(t.url, 'GET', '/v1/snapshot?service=payments', t.adminToken)).body
      return Object.keys(v.endpoints).length === 2 && v
    })
    const svc = view.composed.filter((r: { kind: string; metadata: { name: string } }) => r.kind === 'Service' && r.metadata.name === 'payments')
    assert.equal(svc.length, 1, 'one service named payments in the view')
    assert.deepEqual(svc[0].spec.endpoints.map((e: { address: string }) => e.address), ['127.0.0.1:8081'])
    assert.deepEqual(view.skipped.map((s: { instance: string }) => s.instance), [evil.id])
    const services = (await call(t.url, 'GET', '/v1/services', t.adminToken)).body
    assert.deepEqual(services.services.map((s: { name: string; namespace: string; source: string }) => [s.name, s.namespace, s.source]), [['payments', 'default', 'both']])
    assert.match(services.warnings.join('\n'), /team-a\/payments: endpoint 127\.0\.0\.1:6666 .* left out: registered in namespace team-a, but the Service "payments" here is the one of namespace default/)
  } finally {
    await t.daemon.close()
  }
})

test('a registry-only service gets metadata.namespace from its registrations', async () => {
  const t = await startTestDaemon({ coalesceMs: 5 })
  try {
    await register(t, { service: 'ledger', namespace: 'team-a', address: '127.0.0.1', port: 7001, protocol: 'grpc' })
    const view = await eventually(async () => {
      const v = (await call(t.url, 'GET', '/v1/snapshot', t.adminToken)).body
      return v.composed.length > 0 && v
    })
    assert.deepEqual(view.composed.map((r: { metadata: object; spec: { protocol: string } }) => [r.metadata, r.spec.protocol]), [[{ name: 'ledger', namespace: 'team-a' }, 'grpc']])
    const services = (await call(t.url, 'GET', '/v1/services', t.adminToken)).body.services
    assert.deepEqual(services.map((s: { name: string; namespace: string; source: string }) => [s.name, s.namespace, s.source]), [['ledger', 'team-a', 'registry']])
  } finally {
    await t.daemon.close()
  }
})
