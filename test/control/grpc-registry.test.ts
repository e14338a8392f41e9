// gRPC servers register too: mesh.grpc.listen advertises a grpc endpoint, and a gRPC client on
// another mesh calls it with no Service resource at all (the registry makes the service).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { get, LedgerClient, ledgerImpl, LedgerService, type Ledger } from '../helpers/grpc-kit.js'

test('mesh.grpc.listen registers a grpc endpoint; a client mesh calls it through the registry alone', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const names = ['ledger-a', 'ledger-b']
  const servers = await Promise.all(names.map(async (name) => {
    const mesh = await controlMesh(d, 'ledger', { labels: { instance: name } })
    const server = mesh.grpc.server()
    server.addService(LedgerService, ledgerImpl(name))
    const { port } = await mesh.grpc.listen(server, { port: 0, host: '127.0.0.1' })
    return { mesh, port }
  }))
  const caller = await controlMesh(d, 'payments')
  const client = caller.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    client.close()
    await caller.close()
    for (const s of servers) await s.mesh.close()
  })
  await waitEndpoints(caller, 'ledger', 2)
  const svc = caller.snapshot!.lookup('ledger')!
  assert.equal(svc.settings.protocol, 'grpc', 'the registry-made Service takes its endpoints\' protocol')
  assert.deepEqual(svc.runtime.endpoints.list().map((e) => e.labels.instance).sort(), names)
  const from = new Set<string>()
  for (let i = 0; i < 20; i++) from.add((await get(client, { id: `x${i}` })).from)
  assert.ok(from.size >= 1 && [...from].every((f) => names.includes(f)))
  // One instance leaves: the caller's calls all go to the other, none fails.
  await servers[0]!.mesh.close()
  await waitEndpoints(caller, 'ledger', 1)
  for (let i = 0; i < 10; i++) assert.equal((await get(client, { id: `y${i}` })).from, 'ledger-b')
})
