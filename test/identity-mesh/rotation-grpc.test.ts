// SVID renewal under gRPC load (identity issue; RELIABILITY F11, M7): a meshed gRPC client calls a
// meshed gRPC server over mTLS while both renew their certificates at least twice and the client
// makes a new connection with a renewed certificate. The mesh's retries are off for the service
// (by default it retries UNAVAILABLE, which would hide a dropped connection; grpc-js's own retries
// are off on mesh channels): 0 failed calls.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { applyPolicy, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints, type LoggedMesh } from '../helpers/control-kit.js'
import { get, LedgerClient, ledgerImpl, LedgerService, type Ledger } from '../helpers/grpc-kit.js'
import { metricValue } from '../helpers/mesh.js'

/** Counts the certificates a mesh has held since now (the current one is 1). */
function renewals(mesh: LoggedMesh): () => number {
  const seen = new Set<string>([mesh.identity.current()?.certChainPem[0] ?? ''])
  mesh.identity.onUpdate((m) => {
    if (m) seen.add(m.certChainPem[0]!)
  })
  return () => seen.size - 1
}

test('gRPC under SVID renewal, retries off: 0 failed calls while client and server each renew at least twice', async (t) => {
  // SVIDs of 6 s, renewed about every 3 s; the daemon signs at most 6 a minute per instance, so
  // the run stops once both sides have renewed twice.
  const d = await startTestDaemon({ svidTtlMs: 6000 })
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: ledger }\nspec:\n  protocol: grpc\n  retries: { attempts: 0 }\n')
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const ledger = await controlMesh(d, 'ledger')
  const server = ledger.grpc.server()
  let served = 0
  // The client certificates the server saw (each connection's handshake): new connections were
  // made with the client's renewed certificates, not only the first one kept open.
  const clientCerts = new Set<string>()
  server.addService(LedgerService, ledgerImpl('ledger-a', {
    onCall: (_method, call: { getAuthContext(): { sslPeerCertificate?: { fingerprint256?: string } } }) => {
      served++
      const fp = call.getAuthContext().sslPeerCertificate?.fingerprint256
      if (fp) clientCerts.add(fp)
    },
  }))
  await ledger.grpc.listen(server, { port: 0, host: '127.0.0.1' })
  const payments = await controlMesh(d, 'payments')
  const client = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    client.close()
    await payments.close()
    await ledger.close()
  })
  await waitEndpoints(payments, 'ledger', 1)
  assert.equal(payments.snapshot?.lookup('ledger')?.settings.retries.attempts, 0, 'the caller has retries off for the ledger')
  assert.ok(ledger.identity.current() && payments.identity.current(), 'both hold SVIDs')
  const serverRenewals = renewals(ledger)
  const clientRenewals = renewals(payments)

  let running = true
  let ok = 0
  const failed: string[] = []
  const loop = async (i: number): Promise<void> => {
    for (let n = 0; running; n++) {
      try {
        const e = await get(client, { id: `${i}-${n}` })
        if (e.from === 'ledger-a') ok++
        else failed.push(`answer from ${e.from}`)
      } catch (err) {
        failed.push(`${(err as { code?: number }).code ?? ''} ${(err as Error).message}`)
      }
      await new Promise((r) => setTimeout(r, 2))
    }
  }
  const loops = Array.from({ length: 4 }, (_, i) => loop(i))
  try {
    // About 6 s here; the deadline stays under the daemon's signing limit (6 a minute per instance:
    // with 6 s SVIDs the 7th signing, refused, would come after about 18 s).
    await eventually(async () => serverRenewals() >= 2 && clientRenewals() >= 2 && clientCerts.size >= 2, 15_000, 'two renewals on each side, and a connection made with a renewed client certificate')
  } finally {
    running = false
    await Promise.all(loops)
  }

  assert.deepEqual(failed, [], `failed calls during renewal: ${failed.slice(0, 3).join('; ')}`)
  assert.ok(ok > 50, `${ok} calls`)
  assert.equal(served, ok, 'every call reached the handler once')
  assert.ok(clientCerts.size >= 2, `the server saw ${clientCerts.size} distinct client certificates (connections made after a renewal)`)
  assert.equal(metricValue(await payments.metrics(), 'weft_retries_total', { destination_service: 'ledger' }), 0, 'no retry hid anything')
  const m = await ledger.metrics()
  assert.equal(metricValue(m, 'rpc_server_duration_seconds_count', { source_service: 'payments', rpc_grpc_status_code: '0' }), ok, 'the server named the caller by its certificate on every call')
  assert.equal(metricValue(m, 'weft_mtls_connections_refused_total'), 0)
})
