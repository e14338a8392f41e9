// AuthorizationPolicy `to.ports` on gRPC calls: the local port a call arrived on reaches the authz
// engine, as it does for HTTP (InboundCall.port). Before the fix every gRPC call was seen on port
// 0: an ALLOW on the server's port denied every call, and a DENY on it never matched.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { quietMesh } from '../helpers/mesh.js'
import { get, grpc, LedgerClient, ledgerImpl, LedgerService, type Ledger } from '../helpers/grpc-kit.js'
import { freePort } from '../helpers/free-port.js'


test('gRPC: an ALLOW on the server\'s own port lets calls through', async (t) => {
  const port = await freePort()
  const mesh = await quietMesh([
    { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'ledger-port' }, spec: { service: 'ledger', action: 'ALLOW', rules: [{ to: [{ ports: [port] }] }] } },
  ], { service: 'ledger' })
  const server = mesh.grpc.server()
  server.addService(LedgerService, ledgerImpl('ledger-a'))
  await mesh.grpc.listen(server, { port, host: '127.0.0.1' })
  const client = new LedgerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Ledger
  t.after(async () => {
    client.close()
    await mesh.close()
  })
  assert.equal((await get(client, { id: 'a' })).from, 'ledger-a')
})

test('gRPC: a DENY on the server\'s own port denies every call with PERMISSION_DENIED', async (t) => {
  const port = await freePort()
  const mesh = await quietMesh([
    { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'ledger-port-deny' }, spec: { service: 'ledger', action: 'DENY', rules: [{ to: [{ ports: [port] }] }] } },
  ], { service: 'ledger' })
  const server = mesh.grpc.server()
  server.addService(LedgerService, ledgerImpl('ledger-a'))
  await mesh.grpc.listen(server, { port, host: '127.0.0.1' })
  const client = new LedgerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Ledger
  t.after(async () => {
    client.close()
    await mesh.close()
  })
  await assert.rejects(get(client, { id: 'a' }), (err: Error & { code?: number }) => {
    assert.equal(err.code, grpc.status.PERMISSION_DENIED)
    assert.match(err.message, /ledger-port-deny/)
    return true
  })
})
