// Revoking one identity under a daemon (RELIABILITY M8), gRPC over mTLS with real meshes and
// grpc-js servers on 127.0.0.1: `checkout` is revoked while it holds open HTTP/2 sessions to
// `ledger`: ledger drains them (counted as weft_mtls_connections_refused_total{reason="revoked"}),
// a grpc-js client presenting checkout's certificate gets UNAUTHENTICATED naming the revocation and
// its reason on its next call, checkout's mesh client is refused naming it, another caller's calls
// all succeed; once lifted, both are served again.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { call, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints, type LoggedMesh } from '../helpers/control-kit.js'
import { get, grpc, LedgerClient, ledgerImpl, startMeshedLedger, type Ledger } from '../helpers/grpc-kit.js'
import { metricValue } from '../helpers/mesh.js'

const REASON = 'key leaked in INC-43'
const REVOKED = /spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout is revoked \(reason: key leaked in INC-43/

/** A plain grpc-js client on its own connection presenting `mesh`'s certificate (the server's identity is not checked). */
function clientWithCertOf(port: number, mesh: LoggedMesh): Ledger {
  const m = mesh.identity.current()!
  const creds = grpc.credentials.createSsl(Buffer.from(m.bundle.roots.join('\n')), Buffer.from(m.keyPem), Buffer.from(m.certChainPem.join('\n')), { checkServerIdentity: () => undefined })
  return new LedgerClient(`127.0.0.1:${port}`, creds, { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': 'ledger' }) as unknown as Ledger
}

async function revokedCount(mesh: LoggedMesh): Promise<number> {
  return metricValue(await mesh.metrics(), 'weft_mtls_connections_refused_total', { reason: 'revoked' })
}

test('revoking checkout drains its open gRPC sessions to ledger and refuses its calls naming the revocation; another caller sees 0 failed calls; unrevoke serves checkout again', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const ledger = await controlMesh(d, 'ledger')
  t.after(() => ledger.close())
  const { port } = await startMeshedLedger(ledger, ledgerImpl('ledger-a'))
  const checkout = await controlMesh(d, 'checkout')
  const orders = await controlMesh(d, 'orders')
  const fromCheckout = checkout.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const fromOrders = orders.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const held = clientWithCertOf(port, checkout)
  t.after(async () => {
    held.close()
    fromCheckout.close()
    fromOrders.close()
    await checkout.close()
    await orders.close()
  })
  await waitEndpoints(checkout, 'ledger', 1)
  await waitEndpoints(orders, 'ledger', 1)
  assert.equal((await get(fromCheckout, { id: 'before' })).from, 'ledger-a')
  assert.equal((await get(held, { id: 'before' })).from, 'ledger-a')
  const heldChannel = (held as unknown as grpc.Client).getChannel()
  assert.equal(heldChannel.getConnectivityState(false), grpc.connectivityState.READY)

  // orders calls all along.
  let running = true
  const failed: string[] = []
  let ok = 0
  const loop = (async () => {
    while (running) {
      try {
        await get(fromOrders, { id: 'orders' }, { deadline: Date.now() + 5000 })
        ok++
      } catch (err) {
        failed.push((err as Error).message)
      }
    }
  })()
  t.after(() => {
    running = false
  })

  const revoked = await call(d.url, 'POST', '/v1/revocations', d.adminToken, { service: 'checkout', reason: REASON })
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body))
  await eventually(async () => (await revokedCount(ledger)) >= 2, 10_000, 'ledger drained both sessions of checkout (its mesh\'s and the held client\'s)')
  await eventually(async () => heldChannel.getConnectivityState(false) !== grpc.connectivityState.READY, 10_000, 'the held client\'s connection was closed')

  // The held client reconnects: its call is refused, naming the revocation.
  await assert.rejects(get(held, { id: 'after' }, { deadline: Date.now() + 5000 }), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAUTHENTICATED, err.message)
    assert.equal(err.metadata.get('weft-error-code')[0], 'WEFT_ERR_UNAUTHENTICATED')
    assert.match(err.details, REVOKED)
    return true
  })
  // checkout's mesh knows: refused before a call reaches ledger, naming it.
  await eventually(async () => checkout.identity.revocations().size === 1, 10_000, 'checkout applied the revocation')
  await assert.rejects(get(fromCheckout, { id: 'after' }, { deadline: Date.now() + 5000 }), (err: grpc.ServiceError) => {
    assert.match(err.details, REVOKED)
    return true
  })

  running = false
  await loop
  assert.deepEqual(failed, [], `orders' failed calls: ${failed.slice(0, 3).join('; ')}`)
  assert.ok(ok > 0, `${ok} calls from orders`)

  assert.equal((await call(d.url, 'DELETE', '/v1/revocations/default/checkout', d.adminToken)).status, 200)
  await eventually(async () => [checkout, ledger].every((m) => m.identity.revocations().size === 0), 10_000, 'both applied the lift')
  assert.equal((await get(fromCheckout, { id: 'lifted' }, { deadline: Date.now() + 5000 })).from, 'ledger-a')
  assert.equal((await get(held, { id: 'lifted' }, { deadline: Date.now() + 5000 })).from, 'ledger-a')
})
