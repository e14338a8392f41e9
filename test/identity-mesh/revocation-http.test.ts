// Revoking one identity under a daemon (RELIABILITY M8, "kill connections of identity X"), HTTP/1
// over mTLS with real meshes and node:http servers on 127.0.0.1: `checkout` is revoked while it
// holds open keep-alive connections to `payments`: payments ends them and refuses checkout's new
// handshakes (counted as weft_mtls_connections_refused_total{reason="revoked"}, logged with the
// reason), checkout's own calls are refused with WEFT_ERR_UNAUTHENTICATED naming the revocation,
// another caller keeps working with 0 failed requests (retries off); once lifted, checkout's calls
// and handshakes succeed again. And a revoked instance's renewal CSR is refused: its certificate
// runs out, and after unrevoke it gets a new one at once and calls succeed.
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { applyPolicy, call, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, trafficLoop, waitEndpoints, type LoggedMesh, PAYMENTS_NO_RETRIES, paymentsUnderDaemon } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'
import { certOf, heldTlsClient } from '../helpers/held-client.js'

const CHECKOUT_ID = 'spiffe://weft.local/ns/default/sa/checkout'
const REASON = 'key leaked in INC-42'

/** A keep-alive HTTPS client presenting `mesh`'s certificate on its own connection. */
function heldClient(port: number, mesh: LoggedMesh) {
  const m = mesh.identity.current()!
  return heldTlsClient(port, certOf(m), m.bundle.roots, 'payments')
}

async function revokedCount(mesh: LoggedMesh): Promise<number> {
  return metricValue(await mesh.metrics(), 'weft_mtls_connections_refused_total', { reason: 'revoked' })
}

test('revoking checkout ends its open keep-alive connections to payments and refuses its new handshakes naming the revocation; another caller sees 0 failed requests; unrevoke lets checkout in again', async (t) => {
  const { d, payments, port } = await paymentsUnderDaemon(t)
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  const orders = await controlMesh(d, 'orders')
  t.after(() => orders.close())
  await waitEndpoints(checkout, 'payments', 1)
  await waitEndpoints(orders, 'payments', 1)
  assert.equal((await (await checkout.request('http://payments/')).body.text()), 'ok')

  // Two open connections of checkout's identity: its mesh pool's and one held here.
  const held = heldClient(port, checkout)
  t.after(() => held.close())
  assert.equal((await held.get()).status, 200)
  const loop = trafficLoop(t, orders, 'payments', 4)

  const revoked = await call(d.url, 'POST', '/v1/revocations', d.adminToken, { service: 'checkout', reason: REASON })
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body))
  await eventually(async () => held.counts.disconnects === 1, 10_000, 'payments ended the held connection of checkout')
  assert.ok(await revokedCount(payments) >= 1, 'counted as revoked')
  assert.ok(payments.log.lines.some((l) => l.includes(`identity: ${CHECKOUT_ID} is revoked (reason: ${REASON}`)), 'payments logged the revocation with its reason')

  // checkout's own calls: refused before any handshake, the error naming the revocation.
  await eventually(async () => checkout.identity.revocations().size === 1, 10_000, 'checkout applied the revocation')
  await assert.rejects(checkout.request('http://payments/'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'WEFT_ERR_UNAUTHENTICATED', err.message)
    assert.match(err.message, /spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout is revoked \(reason: key leaked in INC-42/)
    return true
  })
  // A client that does not know (its own mesh did not tell it): refused at payments' handshake.
  const before = await revokedCount(payments)
  const again = heldClient(port, checkout)
  t.after(() => again.close())
  await assert.rejects(again.get(), 'a revoked identity\'s new handshake is refused')
  await eventually(async () => (await revokedCount(payments)) > before, 5000, 'the refused handshake counted as revoked')

  const { ok, failed } = await loop.stop()
  assert.deepEqual(failed, [], `orders' failed calls: ${failed.slice(0, 3).join('; ')}`)
  assert.ok(ok > 0, `${ok} calls from orders`)

  const lifted = await call(d.url, 'DELETE', '/v1/revocations/default/checkout', d.adminToken)
  assert.equal(lifted.status, 200, JSON.stringify(lifted.body))
  await eventually(async () => [checkout, payments].every((m) => m.identity.revocations().size === 0), 10_000, 'both applied the lift')
  const res = await checkout.request('http://payments/')
  assert.equal(res.statusCode, 200)
  assert.equal(await res.body.text(), 'ok')
  const back = heldClient(port, checkout)
  t.after(() => back.close())
  assert.equal((await back.get()).status, 200, 'a new handshake with checkout\'s certificate is served again')
})

test('a revoked instance\'s renewal CSR is refused (its certificate runs out); after unrevoke it gets a certificate at once and its calls succeed', async (t) => {
  const d = await startTestDaemon({ svidTtlMs: 3000 })
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, PAYMENTS_NO_RETRIES)).status, 200)
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  const server = http.createServer((_req, res) => res.end('ok'))
  await payments.listen(server, { port: 0, host: '127.0.0.1' })
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(checkout, 'payments', 1)
  assert.equal((await checkout.request('http://payments/')).statusCode, 200)
  const first = checkout.identity.current()!

  assert.equal((await call(d.url, 'POST', '/v1/revocations', d.adminToken, { spiffeId: CHECKOUT_ID, reason: REASON })).status, 200)
  await eventually(async () => checkout.log.lines.some((l) => /certificate request failed .*checkout is revoked \(reason: key leaked in INC-42/.test(l)), 10_000, 'checkout\'s renewal refused, naming the revocation')
  await eventually(async () => checkout.identity.current() === undefined, 10_000, 'checkout\'s certificate ran out unrenewed')
  assert.ok(Date.now() >= first.notAfter)

  assert.equal((await call(d.url, 'DELETE', '/v1/revocations/default/checkout', d.adminToken)).status, 200)
  await eventually(async () => checkout.identity.current() !== undefined, 10_000, 'checkout got a certificate again')
  assert.notEqual(checkout.identity.current()!.keyPem, first.keyPem, 'with a new key')
  // The certificate can come before the view without the revocation (the CSR is retried on its own
  // timer, the view is pushed after the coalescing window): until then checkout still refuses itself.
  await eventually(async () => checkout.identity.revocations().size === 0, 10_000, 'checkout applied the unrevoke')
  const res = await checkout.request('http://payments/')
  assert.equal(res.statusCode, 200)
  assert.equal(await res.body.text(), 'ok')
})

test('revoking the server\'s identity: a caller closes its pooled connections to it and refuses new ones, naming the destination\'s revocation', async (t) => {
  const open = new Set<unknown>()
  const { d, payments } = await paymentsUnderDaemon(t, undefined, (server) => server.on('connection', (s) => {
    open.add(s)
    s.once('close', () => open.delete(s))
  }))
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(checkout, 'payments', 1)
  assert.equal((await checkout.request('http://payments/')).statusCode, 200)
  assert.equal(open.size, 1, 'checkout holds one keep-alive connection')

  assert.equal((await call(d.url, 'POST', '/v1/revocations', d.adminToken, { service: 'payments', reason: 'host compromised' })).status, 200)
  await eventually(async () => open.size === 0, 10_000, 'checkout closed its connection to payments')
  await assert.rejects(checkout.request('http://payments/'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'WEFT_ERR_UNAUTHENTICATED', err.message)
    assert.match(err.message, /the destination's identity spiffe:\/\/weft\.local\/ns\/default\/sa\/payments is revoked \(reason: host compromised/)
    return true
  })
  assert.equal(open.size, 0, 'no new connection was made')
})
