// mTLS and authorization for gRPC under a daemon (identity issue): grpc-js credentials fed by the
// SVID, the caller's SPIFFE ID as source_service and principal, PERMISSION_DENIED naming the policy,
// and a plaintext grpc-js client refused by a STRICT server.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { applyPolicy, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { get, grpc, LedgerClient, ledgerImpl, LedgerService, type Ledger } from '../helpers/grpc-kit.js'
import { metricValue } from '../helpers/mesh.js'

test('gRPC under a daemon: mTLS with SVIDs, the caller identified by its certificate, an AuthorizationPolicy denying another caller with PERMISSION_DENIED, plaintext refused', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, [
    'apiVersion: weft/v1',
    'kind: AuthorizationPolicy',
    'metadata: { name: ledger-allow-payments }',
    'spec:',
    '  service: ledger',
    '  action: ALLOW',
    '  rules:',
    '    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/payments"] }]',
    '',
  ].join('\n'))
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const ledger = await controlMesh(d, 'ledger')
  const server = ledger.grpc.server()
  let calls = 0
  server.addService(LedgerService, ledgerImpl('ledger-a', { onCall: () => calls++ }))
  const { port } = await ledger.grpc.listen(server, { port: 0, host: '127.0.0.1' })
  const payments = await controlMesh(d, 'payments')
  const intruder = await controlMesh(d, 'intruder')
  const ok = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const bad = intruder.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const plain = new LedgerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Ledger
  t.after(async () => {
    for (const c of [ok, bad, plain]) c.close()
    await payments.close()
    await intruder.close()
    await ledger.close()
  })
  await waitEndpoints(payments, 'ledger', 1)
  await waitEndpoints(intruder, 'ledger', 1)

  assert.equal((await get(ok, { id: 'a' })).from, 'ledger-a')
  const m = await ledger.metrics()
  assert.equal(metricValue(m, 'rpc_server_duration_seconds_count', { source_service: 'payments', rpc_grpc_status_code: '0' }), 1)

  await assert.rejects(get(bad, { id: 'b' }), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.PERMISSION_DENIED)
    assert.match(err.details, /ledger-allow-payments/)
    assert.equal(err.metadata.get('weft-error-code')[0], 'WEFT_ERR_FORBIDDEN')
    return true
  })
  await assert.rejects(get(plain, { id: 'c' }, { deadline: Date.now() + 2000 }), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAUTHENTICATED, err.message)
    assert.equal(err.metadata.get('weft-error-code')[0], 'WEFT_ERR_UNAUTHENTICATED')
    return true
  })
  assert.equal(calls, 1, 'only the allowed call reached the handler')
  assert.equal(metricValue(await ledger.metrics(), 'weft_authz_denied_total', { policy: 'ledger-allow-payments' }), 1)
})
