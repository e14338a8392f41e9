// Servers that already speak TLS (node:https, Fastify with `https`, Express's app on an https
// server) under a daemon: in STRICT/PERMISSIVE they serve mesh mTLS with the instance's SVID (the
// caller's SPIFFE ID reaches the handler, the destination's ID is checked by the caller); with
// PeerAuthentication DISABLE they serve their own certificate, as without a mesh.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import express from 'express'
import Fastify from 'fastify'
import { Agent, request } from 'undici'
import { weft } from '../../adapters/express/index.js'
import { weftPlugin } from '../../adapters/fastify/index.js'
import { applyPolicy, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

const fixture = (f: string) => readFileSync(fileURLToPath(new URL(`../fixtures/${f}`, import.meta.url)), 'utf8')
const OWN = { key: fixture('localhost-key.pem'), cert: fixture('localhost-cert.pem') }

test('node:https, Fastify over https and Express on an https server, under a daemon: mesh mTLS with the SVID; DISABLE gives them back their own certificate', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())

  // payments: node:https through mesh.listen.
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  const seen: string[] = []
  const paymentsServer = https.createServer(OWN, (req, res) => {
    seen.push(`payments ${(req.socket as { encrypted?: boolean }).encrypted ? 'tls' : 'plain'}`)
    res.end('charged')
  })
  const paymentsPort = ((await payments.listen(paymentsServer, { port: 0, host: '127.0.0.1' })) as AddressInfo).port

  // ledger: Fastify 5 with its own https options and the weft plugin.
  const ledger = await controlMesh(d, 'ledger')
  t.after(() => ledger.close())
  const fastify = Fastify({ https: OWN })
  await fastify.register(weftPlugin, { mesh: ledger })
  fastify.get('/entries', async (req) => ({ tls: Boolean((req.raw.socket as { encrypted?: boolean }).encrypted) }))
  t.after(() => fastify.close())
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const ledgerPort = (fastify.server.address() as AddressInfo).port
  await ledger.register({ port: ledgerPort, host: '127.0.0.1' })

  // reports: Express 5 on an https server, secured by hand (Express listens itself).
  const reports = await controlMesh(d, 'reports')
  t.after(() => reports.close())
  const app = express()
  app.use(weft(reports))
  app.get('/daily', (req, res) => {
    res.json({ tls: Boolean((req.socket as { encrypted?: boolean }).encrypted) })
  })
  const reportsServer = https.createServer(OWN, app)
  reports.secure(reportsServer)
  await new Promise<void>((r) => reportsServer.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => reportsServer.close(() => r())))
  const reportsPort = (reportsServer.address() as AddressInfo).port
  await reports.register({ port: reportsPort, host: '127.0.0.1' })

  await waitEndpoints(checkout, 'payments', 1)
  await waitEndpoints(checkout, 'ledger', 1)
  await waitEndpoints(checkout, 'reports', 1)

  const charged = await checkout.request('http://payments/charge')
  assert.equal(charged.statusCode, 200)
  assert.equal(await charged.body.text(), 'charged')
  const entries = await checkout.request('http://ledger/entries')
  assert.equal(entries.statusCode, 200)
  assert.deepEqual(await entries.body.json(), { tls: true })
  const daily = await checkout.request('http://reports/daily')
  assert.equal(daily.statusCode, 200)
  assert.deepEqual(await daily.body.json(), { tls: true })
  for (const [mesh, route] of [[payments, undefined], [ledger, '/entries'], [reports, '/daily']] as const) {
    const m = await mesh.metrics()
    assert.equal(metricValue(m, 'http_server_request_duration_seconds_count', { source_service: 'checkout', status_code: '200', ...(route ? { http_route: route } : {}) }), 1, `${mesh.service} saw checkout by its certificate`)
  }

  // STRICT: a TLS client with no mesh certificate is refused at the handshake, not served with the
  // server's own certificate.
  const plainTls = new Agent({ connect: { rejectUnauthorized: false } })
  t.after(() => plainTls.close())
  for (const port of [paymentsPort, ledgerPort, reportsPort]) {
    await assert.rejects(request(`https://127.0.0.1:${port}/`, { dispatcher: plainTls }), `port ${port}: no client certificate, no answer`)
  }

  // DISABLE: the servers are their own again (their certificate, no client certificate asked).
  const applied = await applyPolicy(d, 'apiVersion: weft/v1\nkind: MeshConfig\nmetadata: { name: mesh }\nspec: { mtls: DISABLE }\n')
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  await new Promise((r) => setTimeout(r, 300))
  const ownCa = new Agent({ connect: { ca: OWN.cert, servername: 'localhost' } })
  t.after(() => ownCa.close())
  const own = await request(`https://127.0.0.1:${paymentsPort}/charge`, { dispatcher: ownCa })
  assert.equal(own.statusCode, 200)
  assert.equal(await own.body.text(), 'charged')
  const ownLedger = await request(`https://127.0.0.1:${ledgerPort}/entries`, { dispatcher: ownCa })
  assert.deepEqual(await ownLedger.body.json(), { tls: true })
  assert.deepEqual(seen, ['payments tls', 'payments tls'])
})
