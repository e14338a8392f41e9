// The TLS front door keeps open connections no longer than their client certificates (RELIABILITY
// M7/M8, F11/F13): real mTLS on 127.0.0.1, a node:http server behind attachFrontDoor, and keep-alive
// clients. A bundle that drops a root ends its connections (idle at once; a response in flight
// finishes first, then the connection closes); a connection ends at its client chain's notAfter.
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { test } from 'node:test'
import type { TLSSocket } from 'node:tls'
import { certOf, heldTlsClient } from '../helpers/held-client.js'
import { attachFrontDoor, type FrontDoorSecurity } from '../../src/http/tls-front-door.js'
import { newBundle, removeRoot, type TrustBundle } from '../../src/identity/bundle.js'
import { CertificateAuthority } from '../../src/identity/ca.js'
import { createCsr, generateKeyPair } from '../../src/identity/keys.js'
import { chainTrusted, peerChainOf } from '../../src/identity/peer-chain.js'
import { workloadId, type SpiffeId } from '../../src/identity/spiffe-id.js'
import { secureContextOptions, verifyClientPeer, type TlsMaterial } from '../../src/identity/tls-material.js'
import { forge, forgeIntermediate } from './pki.js'

const TD = 'weft.local'
const payments = workloadId(TD, 'default', 'payments')
const checkout = workloadId(TD, 'default', 'checkout')
const opts = { timeout: 20_000 }

async function svid(ca: CertificateAuthority, id: SpiffeId, bundle: TrustBundle): Promise<TlsMaterial> {
  const keys = await generateKeyPair()
  const signed = await ca.sign(await createCsr(keys, id), { id })
  return { certChainPem: signed.certChainPem, keyPem: keys.privateKeyPem, bundle }
}

async function until(check: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A node:http server behind the front door, with a FrontDoorSecurity the test drives. */
async function frontDoorServer(material: TlsMaterial, handler: http.RequestListener, watch = true) {
  const state = { material, listener: undefined as (() => void) | undefined, refusals: [] as string[] }
  const sec: FrontDoorSecurity = {
    mode: () => 'STRICT',
    contextOptions: () => secureContextOptions(state.material),
    verifyPeer: (s: TLSSocket) => {
      const r = verifyClientPeer(s, TD)
      return typeof r === 'string' ? r : { id: r.toString(), trustDomain: TD, namespace: 'default', service: 'checkout' }
    },
    refused: (reason, detail) => void state.refusals.push(`${reason}: ${detail}`),
    ...(watch ? { watchTrust: (l: () => void) => ((state.listener = l), () => (state.listener = undefined)) } : {}),
  }
  const server = http.createServer(handler)
  server.keepAliveTimeout = 60_000
  // Registered before the front door: it then sees every socket handed to HTTP (the TLS ones).
  const sockets: Socket[] = []
  server.on('connection', (s: Socket) => void sockets.push(s))
  attachFrontDoor(server, sec)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    state,
    /** A new bundle reaches the server: its context and the open connections' check. */
    setBundle(bundle: TrustBundle) {
      state.material = { ...state.material, bundle }
      state.listener?.()
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    }),
  }
}

/** A keep-alive HTTPS client with one connection, presenting `m`; counts its connections. */
const keepAliveClient = (port: number, m: TlsMaterial) => heldTlsClient(port, certOf(m), m.bundle.roots)

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

test('a bundle without root A ends the idle keep-alive connections whose client chains go to A (direct or through an intermediate); B\'s stay; a new A handshake is refused', opts, async (t) => {
  const a = await CertificateAuthority.createRoot({ trustDomain: TD })
  const b = await CertificateAuthority.createRoot({ trustDomain: TD })
  const both = newBundle(TD, [...a.bundleRoots, ...b.bundleRoots], 2)
  const interB = await CertificateAuthority.fromPem({ ...(await forgeIntermediate(b.toPem(), TD)), bundleRoots: b.bundleRoots[0] })
  const s = await frontDoorServer(await svid(b, payments, both), (_req, res) => res.end('ok'))
  t.after(() => s.close())
  const clients = {
    a: keepAliveClient(s.port, await svid(a, checkout, both)),
    b: keepAliveClient(s.port, await svid(b, checkout, both)),
    bViaIntermediate: keepAliveClient(s.port, await svid(interB, checkout, both)),
  }
  t.after(() => Promise.all(Object.values(clients).map((c) => c.close())))
  for (const c of Object.values(clients)) assert.equal((await c.get()).status, 200)
  for (const c of Object.values(clients)) assert.equal((await c.get()).status, 200, 'the same connection again')
  assert.deepEqual(Object.values(clients).map((c) => c.counts.connects), [1, 1, 1])

  // Adding a root changes nothing for anyone.
  s.setBundle(both)
  s.setBundle(removeRoot(both, a.bundleRoots[0]!))
  await until(() => clients.a.counts.disconnects === 1, 'the A connection was ended by the server')
  assert.ok(s.state.refusals.some((r) => /^untrusted: the trust bundle no longer holds the root/.test(r)), s.state.refusals.join('\n'))
  assert.deepEqual([clients.b.counts.disconnects, clients.bViaIntermediate.counts.disconnects], [0, 0])
  assert.equal((await clients.b.get()).status, 200)
  assert.equal((await clients.bViaIntermediate.get()).status, 200)
  assert.deepEqual([clients.b.counts.connects, clients.bViaIntermediate.counts.connects], [1, 1], 'B connections were kept')

  // A new handshake with the A certificate is refused now.
  await assert.rejects(clients.a.get(), 'no answer for a certificate from the retired root')
})

test('a request in flight when its root goes finishes with connection: close, then the connection closes; a streaming response finishes, then the connection closes', opts, async (t) => {
  const a = await CertificateAuthority.createRoot({ trustDomain: TD })
  const b = await CertificateAuthority.createRoot({ trustDomain: TD })
  const both = newBundle(TD, [...a.bundleRoots, ...b.bundleRoots], 2)
  let arrived = deferred()
  let release = deferred()
  const s = await frontDoorServer(await svid(b, payments, both), async (req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('a')
    }
    arrived.resolve()
    await release.promise
    res.end(req.url === '/stream' ? 'b' : 'held')
  })
  t.after(() => s.close())
  t.after(() => release.resolve())
  const retired = removeRoot(both, a.bundleRoots[0]!)

  // Headers not sent yet: the response says connection: close.
  const held = keepAliveClient(s.port, await svid(a, checkout, both))
  t.after(() => held.close())
  const pending = held.get('/hold')
  await arrived.promise
  s.setBundle(retired)
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(held.counts.disconnects, 0, 'the connection with a request in flight is still open')
  release.resolve()
  assert.deepEqual(await pending, { status: 200, connection: 'close', body: 'held' })
  await until(() => held.counts.disconnects === 1, 'the connection closed after the response')

  // Headers already sent (a stream): the response finishes, then the connection is closed.
  s.setBundle(both)
  arrived = deferred()
  release = deferred()
  const streaming = keepAliveClient(s.port, await svid(a, checkout, both))
  t.after(() => streaming.close())
  const answer = streaming.get('/stream')
  await arrived.promise
  s.setBundle(newBundle(TD, b.bundleRoots, 10))
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(streaming.counts.disconnects, 0)
  release.resolve()
  const got = await answer
  assert.equal(got.status, 200)
  assert.equal(got.body, 'ab', 'the whole response arrived')
  await until(() => streaming.counts.disconnects === 1, 'the connection closed after the stream')
})

test('a connection ends at its client certificate\'s notAfter: usable before; a request in flight then gets connection: close', opts, async (t) => {
  const ca = await CertificateAuthority.createRoot({ trustDomain: TD })
  const bundle = ca.bundle()
  const s = await frontDoorServer(await svid(ca, payments, bundle), async (req, res) => {
    // Answers once the front door has ended this connection (deterministic, whatever the load).
    if (req.url === '/until-expired') await until(() => s.state.refusals.some((r) => r.startsWith('expired:')), 'expiry seen').catch(() => {})
    res.end('ok')
  })
  t.after(() => s.close())
  const forged = await forge(ca.toPem(), { uris: [checkout.toString()], notAfter: new Date(Date.now() + 2500) })
  const notAfter = Date.parse(new X509Certificate(forged.certPem).validTo)
  const c = keepAliveClient(s.port, { certChainPem: [forged.certPem], keyPem: forged.keyPem, bundle })
  t.after(() => c.close())
  assert.equal((await c.get()).status, 200)
  const inFlight = await c.get('/until-expired')
  assert.ok(Date.now() >= notAfter, 'answered only after notAfter')
  assert.deepEqual(inFlight, { status: 200, connection: 'close', body: 'ok' })
  await until(() => c.counts.disconnects === 1, 'the connection closed')
  assert.equal(c.counts.connects, 1)
  assert.match(s.state.refusals.find((r) => r.startsWith('expired:'))!, /the client certificate expired at .*; connection ended/)
  // Expired now: refused at the handshake.
  await assert.rejects(c.get())
})

test('an idle connection is destroyed at its client certificate\'s notAfter; without watchTrust the front door tracks nothing', opts, async (t) => {
  const ca = await CertificateAuthority.createRoot({ trustDomain: TD })
  const bundle = ca.bundle()
  const material = await svid(ca, payments, bundle)
  const watched = await frontDoorServer(material, (_req, res) => res.end('ok'))
  const unwatched = await frontDoorServer(material, (_req, res) => res.end('ok'), false)
  t.after(() => Promise.all([watched.close(), unwatched.close()]))
  const forged = await forge(ca.toPem(), { uris: [checkout.toString()], notAfter: new Date(Date.now() + 2000) })
  const notAfter = Date.parse(new X509Certificate(forged.certPem).validTo)
  const m = { certChainPem: [forged.certPem], keyPem: forged.keyPem, bundle }
  const c1 = keepAliveClient(watched.port, m)
  const c2 = keepAliveClient(unwatched.port, m)
  t.after(() => Promise.all([c1.close(), c2.close()]))
  assert.equal((await c1.get()).status, 200)
  assert.equal((await c2.get()).status, 200)
  await until(() => c1.counts.disconnects === 1, 'the watched connection ended')
  assert.ok(Date.now() >= notAfter)
  assert.deepEqual(watched.state.refusals.map((r) => r.split(':')[0]), ['expired'])
  // The front door without watchTrust leaves it open (checked at the handshake only).
  await new Promise((r) => setTimeout(r, 200))
  assert.equal(c2.counts.disconnects, 0)
  assert.equal(unwatched.sockets.filter((s) => !s.destroyed).length, 1)
})

test('peerChainOf and chainTrusted: the chain\'s earliest notAfter, and trust by the root that signed its top certificate', opts, async () => {
  const a = await CertificateAuthority.createRoot({ trustDomain: TD })
  const b = await CertificateAuthority.createRoot({ trustDomain: TD })
  assert.equal(peerChainOf(undefined), undefined)
  assert.equal(peerChainOf({} as never), undefined)
  const inter = await forgeIntermediate(a.toPem(), TD)
  const leaf = await forge(inter, { uris: [checkout.toString()], notAfter: new Date(Date.now() + 60_000) })
  // The shape node gives: each certificate linked to its issuer, a root to itself.
  const node = (pem: string) => {
    const x = new X509Certificate(pem)
    return { raw: x.raw, valid_to: x.validTo, fingerprint256: x.fingerprint256 } as Record<string, unknown>
  }
  const [l, i, r] = [node(leaf.certPem), node(inter.certPem), node(a.bundleRoots[0]!)]
  l.issuerCertificate = i
  i.issuerCertificate = r
  r.issuerCertificate = r
  const chain = peerChainOf(l as never)!
  assert.equal(chain.notAfter, Date.parse(new X509Certificate(leaf.certPem).validTo))
  assert.equal(chain.topFingerprint, i.fingerprint256, 'the intermediate is what a root must have signed')
  assert.equal(chainTrusted(chain, a.bundleRoots), true)
  assert.equal(chainTrusted(chain, b.bundleRoots), false)
  assert.equal(chainTrusted(chain, [...b.bundleRoots, ...a.bundleRoots]), true)
  assert.equal(chainTrusted(chain, ['not a certificate']), false)
})
