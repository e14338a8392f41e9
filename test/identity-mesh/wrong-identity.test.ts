// The destination's SPIFFE ID is checked, not the address (identity issue, RELIABILITY M5): a
// Service "payments" whose endpoint list names an address actually served by a ledger instance is
// dialed with mTLS expecting payments' ID; the ledger's certificate fails the handshake
// (WEFT_ERR_TLS_HANDSHAKE naming both IDs, the ledger's handler never runs) and, with a genuine
// payments endpoint in the same Service, the call is retried there and succeeds.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import type { AddressInfo } from 'node:net'
import { isWeftError } from '../../src/errors/index.js'
import { applyPolicy, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, endpointsOf, meshedNameServer, type LoggedMesh } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

const PAYMENTS_ID = 'spiffe://weft.local/ns/default/sa/payments'
const LEDGER_ID = 'spiffe://weft.local/ns/default/sa/ledger'

/** Applies a Service "payments" with these static mTLS endpoints and waits until `caller` uses them. */
async function paymentsAt(d: Awaited<ReturnType<typeof startTestDaemon>>, caller: LoggedMesh, addresses: string[], extra = ''): Promise<void> {
  const yaml = [
    'apiVersion: weft/v1',
    'kind: Service',
    'metadata: { name: payments }',
    'spec:',
    '  endpoints:',
    ...addresses.map((a) => `    - { address: "${a}", mtls: true }`),
    extra,
    '',
  ].join('\n')
  const applied = await applyPolicy(d, yaml)
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const want = [...addresses].sort().join(',')
  await eventually(async () => endpointsOf(caller, 'payments').join(',') === want, 10_000, `checkout uses payments endpoints ${want}`)
}

test('a payments endpoint served by a ledger instance: WEFT_ERR_TLS_HANDSHAKE naming both SPIFFE IDs, and the ledger\'s handler never runs', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const ledger = await meshedNameServer(d, 'ledger')
  t.after(() => ledger.mesh.close())
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await paymentsAt(d, checkout, [ledger.address])
  assert.ok(checkout.identity.current(), 'checkout has its SVID')

  const err = await checkout.request('http://payments/charge').then(
    () => assert.fail('the call must not succeed against the wrong identity'),
    (e: unknown) => e,
  )
  assert.ok(isWeftError(err, 'WEFT_ERR_TLS_HANDSHAKE'), `got ${String((err as Error).message)}`)
  assert.match(err.message, new RegExp(`the server is ${LEDGER_ID.replace(/[/.]/g, '\\$&')}, expected ${PAYMENTS_ID.replace(/[/.]/g, '\\$&')}`))
  assert.match(err.message, new RegExp(ledger.address.replace(/\./g, '\\.')), 'the endpoint dialed is named')
  assert.equal(ledger.served.count, 0, 'nothing was sent to the ledger: the handshake failed before any request byte')
})

test('with a genuine payments endpoint next to it, every call succeeds: the wrong-identity endpoint\'s handshake fails and the call is retried on the other endpoint', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const ledger = await meshedNameServer(d, 'ledger')
  t.after(() => ledger.mesh.close())
  const payments = await meshedNameServer(d, 'payments')
  t.after(() => payments.mesh.close())
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  // Round-robin: first attempts alternate between the two endpoints, so the ledger's address is
  // picked first within two calls (before outlier detection could eject it).
  await paymentsAt(d, checkout, [ledger.address, payments.address], '  loadBalancer: { policy: round-robin }')

  const bodies: string[] = []
  for (let i = 0; i < 10; i++) {
    // POST without an Idempotency-Key: retried only because no byte was sent (the handshake failed).
    const res = await checkout.request('http://payments/charge', { method: 'POST', body: '{}' })
    assert.equal(res.statusCode, 200)
    bodies.push(await res.body.text())
  }
  assert.deepEqual(new Set(bodies), new Set(['payments']), 'every answer came from the genuine payments instance')
  assert.equal(payments.served.count, 10)
  assert.equal(ledger.served.count, 0, 'the ledger never received a request')
  const m = await checkout.metrics()
  const retries = metricValue(m, 'weft_retries_total', { destination_service: 'payments', reason: 'connect-failure' })
  assert.ok(retries >= 1, `the handshake failures were retried elsewhere (weft_retries_total{reason=connect-failure} = ${retries})`)
  assert.equal(metricValue(m, 'http_client_request_duration_seconds_count', { destination_service: 'payments', status_code: '200' }), 10, 'the application saw 10 successful calls')
})

// http.Server's sockets are half-open, and node's TLS server socket on a half-open socket does not
// close on the peer's FIN during the handshake: a client that gave up there (here: the caller
// refused the server's SPIFFE ID) used to stay in CLOSE-WAIT until the 10 s handshake timeout, and
// mesh.close() waited for it. Fixed in src/http/tls-front-door.ts (TlsTerminator.accept).
test('the server closes its side of a connection whose client refused its identity during the handshake', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const mesh = await controlMesh(d, 'ledger')
  t.after(() => mesh.close())
  const server = http.createServer((_req, res) => res.end('ledger'))
  const { port } = (await mesh.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await paymentsAt(d, checkout, [`127.0.0.1:${port}`], '  retries: { attempts: 0 }')
  await assert.rejects(checkout.request('http://payments/charge'), (e: unknown) => isWeftError(e, 'WEFT_ERR_TLS_HANDSHAKE'))
  // Under the 10 s handshake timeout (which would close it anyway), yet ample for a FIN on loopback.
  await eventually(() => new Promise<boolean>((resolve) => server.getConnections((_e, n) => resolve(n === 0))), 8000, 'the ledger server holds no connection')
})
