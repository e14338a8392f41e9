// Certificate rotation under load (identity issue; RELIABILITY F11, F13): SVIDs renewed every
// couple of seconds with 0 failed requests, and a trust-bundle rotation (add root → re-issue →
// retire the old root) with 0 failed requests, after which a certificate of the old root is
// refused at the handshake.
import assert from 'node:assert/strict'
import http from 'node:http'
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { test } from 'node:test'
import type { AddressInfo } from 'node:net'
import { Client } from 'undici'
import { applyPolicy, call, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, trafficLoop, waitEndpoints } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'
import { CertificateAuthority } from '../../src/identity/ca.js'
import { forge } from '../identity/pki.js'

async function meshedPayments(d: { url: string; joinToken: string }, seen: Set<string>) {
  const payments = await controlMesh(d, 'payments')
  const server = http.createServer((req, res) => {
    const cert = (req.socket as tls.TLSSocket).getPeerCertificate?.()
    if (cert?.fingerprint256) seen.add(cert.fingerprint256)
    res.end('ok')
  })
  const { port } = (await payments.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  return { payments, port }
}

test('SVIDs renewed every ~1.5 s for a bounded run under load: 0 failed requests, the server sees the caller\'s new certificates', async (t) => {
  const d = await startTestDaemon({ svidTtlMs: 3000 })
  t.after(() => d.daemon.close())
  const seen = new Set<string>()
  const { payments } = await meshedPayments(d, seen)
  t.after(() => payments.close())
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(checkout, 'payments', 1)
  const first = checkout.identity.current()!
  const loop = trafficLoop(t, checkout, 'payments', 4)
  await new Promise((r) => setTimeout(r, 6000))
  const { ok, failed } = await loop.stop()
  assert.deepEqual(failed, [], `failures during rotation: ${failed.slice(0, 3).join('; ')}`)
  assert.ok(ok > 200, `${ok} requests`)
  assert.notEqual(checkout.identity.current(), first, 'the caller renewed')
  assert.ok(seen.size >= 3, `the server saw ${seen.size} distinct client certificates`)
})

test('trust-bundle rotation with overlap: rotate (both roots trusted, instances re-issue onto the new one), retire the old root; 0 failed requests; a certificate from the retired root is then refused at the handshake', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const seen = new Set<string>()
  const { payments, port } = await meshedPayments(d, seen)
  t.after(() => payments.close())
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(checkout, 'payments', 1)
  const old = checkout.identity.current()!
  const oldIssuer = new X509Certificate(old.certChainPem[0]!).issuer
  const loop = trafficLoop(t, checkout, 'payments', 4)

  const rotated = await call(d.url, 'POST', '/v1/ca/rotate', d.adminToken)
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
  assert.equal(rotated.body.bundle.roots.length, 2)
  const issuerOf = (m = { certChainPem: [''] }) => new X509Certificate(m.certChainPem[0]!).issuer
  await eventually(async () => [payments, checkout].every((m) => issuerOf(m.identity.current() as never) !== oldIssuer), 8000, 'both instances re-issued by the new root')
  const retired = await call(d.url, 'POST', '/v1/ca/retire', d.adminToken)
  assert.equal(retired.status, 200, JSON.stringify(retired.body))
  await eventually(async () => payments.identity.current()?.bundle.sequence === retired.body.bundle.sequence, 5000, 'payments holds the bundle without the old root')
  await new Promise((r) => setTimeout(r, 500))
  const { ok, failed } = await loop.stop()
  assert.deepEqual(failed, [], `failures during bundle rotation: ${failed.slice(0, 3).join('; ')}`)
  assert.ok(ok > 50)

  // The old certificate (still within its lifetime) no longer verifies at payments.
  const refused = await new Promise<string>((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, cert: old.certChainPem.join('\n'), key: old.keyPem, ca: old.bundle.roots as string[], checkServerIdentity: () => undefined })
    s.on('secureConnect', () => {
      s.write('GET / HTTP/1.1\r\nhost: payments\r\n\r\n')
    })
    s.on('data', () => resolve('answered'))
    s.on('error', (e) => resolve(`error: ${e.message}`))
    s.on('close', () => resolve('closed'))
  })
  assert.notEqual(refused, 'answered', 'a certificate from the retired root must not be served')
})

test('renewal with retries off: 0 failed requests from the meshed caller, and one keep-alive connection stays open across two server renewals, serving requests before and after each', async (t) => {
  // SVIDs of 6 s (renewed about every 3 s): the daemon signs at most 6 certificates a minute per
  // instance, so the run stops once it has seen what it needs, well before that limit. The CA is
  // ours (an operator CA), so the held client below can have a certificate that outlives the run.
  const root = (await CertificateAuthority.createRoot({ trustDomain: 'weft.local' })).toPem()
  const d = await startTestDaemon({ svidTtlMs: 6000, ca: { certPem: root.certPem, keyPem: root.keyPem } })
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec:\n  retries: { attempts: 0 }\n')
  assert.equal(applied.status, 200, JSON.stringify(applied.body))

  // The server numbers its connections (the TLS sockets requests arrive on) and tells, per request,
  // which connection served it and which of its own SVIDs was current then.
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  const connIds = new WeakMap<object, number>()
  let connections = 0
  const svids: string[] = []
  const svidIndex = () => {
    const leaf = payments.identity.current()?.certChainPem[0] ?? ''
    if (!svids.includes(leaf)) svids.push(leaf)
    return svids.indexOf(leaf)
  }
  const server = http.createServer((req, res) => {
    let id = connIds.get(req.socket)
    if (id === undefined) connIds.set(req.socket, (id = ++connections))
    const own = (req.socket as tls.TLSSocket).getCertificate() as { fingerprint256?: string } | null
    res.setHeader('x-conn', String(id))
    res.setHeader('x-svid', String(svidIndex()))
    res.setHeader('x-conn-cert', own?.fingerprint256 ?? '')
    res.end('ok')
  })
  const { port } = (await payments.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(checkout, 'payments', 1)
  assert.equal(checkout.snapshot?.lookup('payments')?.settings.retries.attempts, 0, 'the caller has retries off for payments')

  // One keep-alive connection held by a client that does not renew: a "reports" SVID of the same
  // CA valid for an hour (a server ends a connection when its client's certificate expires, so
  // the client's must outlive the run); only the server renews under it.
  const reports = await forge(root, { uris: ['spiffe://weft.local/ns/default/sa/reports'] })
  const held = new Client(`https://127.0.0.1:${port}`, {
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
    connect: { cert: reports.certPem, key: reports.keyPem, ca: root.certPem, checkServerIdentity: () => undefined, maxCachedSessions: 0 },
  })
  t.after(() => held.close())
  let connects = 0
  let disconnects = 0
  held.on('connect', () => connects++)
  held.on('disconnect', () => disconnects++)
  const heldAnswers: { conn: string; svid: number; cert: string }[] = []
  const getHeld = async () => {
    const r = await held.request({ path: '/held', method: 'GET' })
    await r.body.text()
    assert.equal(r.statusCode, 200)
    heldAnswers.push({ conn: String(r.headers['x-conn']), svid: Number(r.headers['x-svid']), cert: String(r.headers['x-conn-cert']) })
  }

  const loop = trafficLoop(t, checkout, 'payments', 4)
  await getHeld()
  const firstSvid = heldAnswers[0]!.svid
  // Until the server has renewed twice under the held connection (polled; no fixed sleep).
  await eventually(async () => {
    await getHeld()
    return heldAnswers.at(-1)!.svid >= firstSvid + 2
  }, 30_000, 'two server renewals seen by requests on the held connection')
  const { ok, failed } = await loop.stop()

  assert.deepEqual(failed, [], `failures with retries off: ${failed.slice(0, 3).join('; ')}`)
  assert.ok(ok > 50, `${ok} requests`)
  const metrics = await checkout.metrics()
  assert.equal(metricValue(metrics, 'weft_retries_total', { destination_service: 'payments' }), 0, 'no retry hid anything')

  assert.deepEqual(new Set(heldAnswers.map((a) => a.conn)).size, 1, 'every request of the held client was served on one server-side connection')
  assert.deepEqual([connects, disconnects], [1, 0], 'the held client connected once and was never disconnected')
  const served = [...new Set(heldAnswers.map((a) => a.svid))]
  assert.ok(served.length >= 3, `the held connection served requests under ${served.length} successive server SVIDs (before and after two renewals)`)
  assert.equal(new Set(heldAnswers.map((a) => a.cert)).size, 1, 'the open connection kept the certificate it was made with; only new connections get the new one')
  assert.ok(connections > 1, `the meshed caller's pools were replaced on its own renewals (${connections} server-side connections in all)`)
})
