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
import { call, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, trafficLoop, waitEndpoints } from '../helpers/control-kit.js'

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
  const loop = trafficLoop(checkout, 'payments', 4)
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
  const loop = trafficLoop(checkout, 'payments', 4)

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
