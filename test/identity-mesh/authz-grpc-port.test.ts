// AuthorizationPolicy `to.ports` on gRPC calls: the local port a call arrived on reaches the authz
// engine, as it does for HTTP (InboundCall.port). Before the fix every gRPC call was seen on port
// 0: an ALLOW on the server's port denied every call, and a DENY on it never matched.
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { quietMesh } from '../helpers/mesh.js'
import { get, grpc, LedgerClient, ledgerImpl, LedgerService, type Ledger } from '../helpers/grpc-kit.js'
import { freePort } from '../helpers/free-port.js'

/** A meshed ledger on a port chosen first, with one policy on that port; a plain client of it. */
async function ledgerWithPortPolicy(t: TestContext, name: string, action: 'ALLOW' | 'DENY'): Promise<Ledger> {
  const port = await freePort()
  const mesh = await quietMesh([
    { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name }, spec: { service: 'ledger', action, rules: [{ to: [{ ports: [port] }] }] } },
  ], { service: 'ledger' })
  const server = mesh.grpc.server()
  server.addService(LedgerService, ledgerImpl('ledger-a'))
  await mesh.grpc.listen(server, { port, host: '127.0.0.1' })
  const client = new LedgerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Ledger
  t.after(async () => {
    client.close()
    await mesh.close()
  })
  return client
}

test('gRPC: an ALLOW on the server\'s own port lets calls through', async (t) => {
  const client = await ledgerWithPortPolicy(t, 'ledger-port', 'ALLOW')
  assert.equal((await get(client, { id: 'a' })).from, 'ledger-a')
})

test('gRPC: a DENY on the server\'s own port denies every call with PERMISSION_DENIED', async (t) => {
  const client = await ledgerWithPortPolicy(t, 'ledger-port-deny', 'DENY')
  await assert.rejects(get(client, { id: 'a' }), (err: Error & { code?: number }) => {
    assert.equal(err.code, grpc.status.PERMISSION_DENIED)
    assert.match(err.message, /ledger-port-deny/)
    return true
  })
})
