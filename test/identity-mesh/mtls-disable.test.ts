// mTLS mode DISABLE for a plain node:http server under a daemon (identity issue): with MeshConfig
// `mtls: DISABLE`, or a PeerAuthentication DISABLE for the service, the meshed server serves
// plaintext, a meshed caller calls it in plaintext although both hold SVIDs, and source_service
// comes from the caller chain (weft-caller), as there is no peer certificate to name the caller.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { applyPolicy, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints, type LoggedMesh } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

interface Seen {
  encrypted: boolean
  caller: string | undefined
}

async function disabledCase(d: TestDaemon, policy: string): Promise<{ payments: LoggedMesh; checkout: LoggedMesh; port: number; seen: Seen[]; close(): Promise<void> }> {
  const applied = await applyPolicy(d, policy)
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const payments = await controlMesh(d, 'payments')
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    seen.push({ encrypted: Boolean((req.socket as { encrypted?: boolean }).encrypted), caller: req.headers['weft-caller'] as string | undefined })
    res.end('charged')
  })
  const { port } = (await payments.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  const checkout = await controlMesh(d, 'checkout')
  await waitEndpoints(checkout, 'payments', 1)
  return {
    payments, checkout, port, seen,
    async close() {
      await checkout.close()
      await payments.close()
    },
  }
}

async function checkPlaintext(c: Awaited<ReturnType<typeof disabledCase>>): Promise<void> {
  const { payments, checkout, port, seen } = c
  // Both hold SVIDs: plaintext is the mode's doing, not a missing identity.
  assert.ok(payments.identity.current(), 'payments has its SVID')
  assert.ok(checkout.identity.current(), 'checkout has its SVID')
  assert.equal(payments.identity.serverMode(), 'DISABLE')
  assert.equal(checkout.identity.modeFor('payments', 'default'), 'DISABLE', 'the caller reads the destination\'s mode from its view')

  const res = await checkout.request('http://payments/charge')
  assert.equal(res.statusCode, 200)
  assert.equal(await res.body.text(), 'charged')
  assert.deepEqual(seen, [{ encrypted: false, caller: 'checkout' }], 'the meshed call arrived in plaintext, with the caller chain')

  // A plain client is served too (nothing is inspected in DISABLE), and whatever caller chain it
  // sends is what names it: without a certificate the header is all the server has.
  const plain = await request(`http://127.0.0.1:${port}/charge`, { headers: { 'weft-caller': 'web,reports' } })
  assert.equal(plain.statusCode, 200)
  await plain.body.text()
  assert.deepEqual(seen[1], { encrypted: false, caller: 'web,reports' })

  const m = await payments.metrics()
  assert.equal(metricValue(m, 'http_server_request_duration_seconds_count', { source_service: 'checkout', status_code: '200' }), 1, 'source_service from the meshed caller\'s weft-caller header')
  assert.equal(metricValue(m, 'http_server_request_duration_seconds_count', { source_service: 'reports', status_code: '200' }), 1, 'source_service is the last name of the chain the plain client sent')
  assert.equal(metricValue(m, 'weft_mtls_connections_refused_total'), 0)
}

test('MeshConfig mtls: DISABLE under a daemon: a node:http server serves plaintext, a meshed caller with an SVID calls it in plaintext, source_service comes from weft-caller', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const c = await disabledCase(d, 'apiVersion: weft/v1\nkind: MeshConfig\nmetadata: { name: mesh }\nspec: { mtls: DISABLE }\n')
  t.after(() => c.close())
  await checkPlaintext(c)
})

test('PeerAuthentication DISABLE for payments (mesh default STRICT): the same for payments, while checkout\'s own server mode stays STRICT', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const c = await disabledCase(d, 'apiVersion: weft/v1\nkind: PeerAuthentication\nmetadata: { name: payments-plain }\nspec: { service: payments, mtls: DISABLE }\n')
  t.after(() => c.close())
  await checkPlaintext(c)
  assert.equal(c.checkout.identity.serverMode(), 'STRICT', 'the PeerAuthentication selects payments only')
})
