// Open connections follow their peer's certificate under a daemon (RELIABILITY M7/M8, F11/F13): a
// meshed server ends a keep-alive connection when `weft ca retire` drops the root its client
// certificate chains to, and at the client certificate's notAfter; a mesh caller's pooled
// connection to a server ends at the server certificate's notAfter; gRPC endpoint channels are
// closed (then made anew) on both. Real TLS on 127.0.0.1.
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import type { TLSSocket } from 'node:tls'
import type { CaPem } from '../../src/identity/ca.js'
import { applyPolicy, call, eventually, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { controlMesh, trafficLoop, waitEndpoints, PAYMENTS_NO_RETRIES, paymentsUnderDaemon } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'
import { heldTlsClient, type ClientCert } from '../helpers/held-client.js'
import { collect, get, grpc, LedgerClient, ledgerImpl, LedgerService, startMeshedLedger, type Entry, type Ledger } from '../helpers/grpc-kit.js'
import { forge } from '../identity/pki.js'


const PAYMENTS_ID = 'spiffe://weft.local/ns/default/sa/payments'
const CHECKOUT_ID = 'spiffe://weft.local/ns/default/sa/checkout'

/** The daemon's signing CA (test-only: forges certificates the daemon would sign differently). */
function daemonCa(d: TestDaemon): CaPem {
  return (JSON.parse(readFileSync(join(d.dataDir, 'ca', 'ca.json'), 'utf8')) as { active: CaPem }).active
}

const keepAliveClient = (port: number, cert: ClientCert, roots: readonly string[]) => heldTlsClient(port, cert, roots, 'payments')

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 8000): Promise<void> {
  await eventually(async () => (await check()) || undefined, timeoutMs, what)
}

test('ca retire ends an open keep-alive connection whose client certificate came from the retired root, and refuses a new handshake with it; a mesh caller re-issued onto the new root gets only 200s (retries off)', async (t) => {
  const { d, payments, port } = await paymentsUnderDaemon(t)
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(checkout, 'payments', 1)
  assert.equal(checkout.snapshot?.lookup('payments')?.settings.retries.attempts, 0)

  // A client holding checkout's first certificate (root A) on one keep-alive connection.
  const old = checkout.identity.current()!
  const oldIssuer = new X509Certificate(old.certChainPem[0]!).issuer
  const fromA = { certPem: old.certChainPem.join('\n'), keyPem: old.keyPem }
  const rotated = await call(d.url, 'POST', '/v1/ca/rotate', d.adminToken)
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
  const bothRoots = rotated.body.bundle.roots as string[]
  const held = keepAliveClient(port, fromA, bothRoots)
  t.after(() => held.close())
  assert.equal((await held.get()).status, 200)

  const loop = trafficLoop(t, checkout, 'payments', 4)
  const issuerOf = (m: { certChainPem: readonly string[] } | undefined) => (m ? new X509Certificate(m.certChainPem[0]!).issuer : '')
  await until(() => [payments, checkout].every((m) => issuerOf(m.identity.current()) !== oldIssuer), 'both instances re-issued by the new root')
  // A is still in the bundle: the connection is still served, and it is the same one.
  assert.equal((await held.get()).status, 200)
  assert.deepEqual(held.counts, { connects: 1, disconnects: 0 })

  const retired = await call(d.url, 'POST', '/v1/ca/retire', d.adminToken)
  assert.equal(retired.status, 200, JSON.stringify(retired.body))
  await until(() => payments.identity.current()?.bundle.sequence === retired.body.bundle.sequence, 'payments holds the bundle without root A')
  await until(() => held.counts.disconnects === 1, 'payments closed the connection of the A certificate')
  assert.ok(metricValue(await payments.metrics(), 'weft_mtls_connections_refused_total', { reason: 'untrusted' }) >= 1)

  // A new handshake with the A certificate is refused (no answer).
  const again = keepAliveClient(port, fromA, bothRoots)
  t.after(() => again.close())
  await assert.rejects(again.get(), 'a certificate from the retired root is not served')

  await new Promise((r) => setTimeout(r, 300))
  const { ok, failed } = await loop.stop()
  assert.deepEqual(failed, [], `failed calls: ${failed.slice(0, 3).join('; ')}`)
  assert.ok(ok > 50, `${ok} calls`)
})

test('a meshed server ends a connection at its client certificate\'s notAfter; a request in flight then finishes with connection: close; the certificate is then refused', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  const expired = async () => metricValue(await payments.metrics(), 'weft_mtls_connections_refused_total', { reason: 'expired' }) >= 1
  const server = http.createServer(async (req, res) => {
    // Answers once payments has ended this connection: deterministic whatever the machine's load.
    if (req.url === '/until-expired') await until(expired, 'payments saw the certificate expire').catch(() => {})
    res.end('ok')
  })
  server.keepAliveTimeout = 60_000
  const { port } = (await payments.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  const roots = payments.identity.current()!.bundle.roots
  const shortLived = await forge(daemonCa(d), { uris: [CHECKOUT_ID], notAfter: new Date(Date.now() + 3000) })
  const notAfter = Date.parse(new X509Certificate(shortLived.certPem).validTo)
  const c = keepAliveClient(port, shortLived, roots)
  t.after(() => c.close())

  assert.deepEqual(await c.get(), { status: 200, connection: 'keep-alive', body: 'ok' })
  assert.deepEqual(await c.get('/until-expired'), { status: 200, connection: 'close', body: 'ok' })
  assert.ok(Date.now() >= notAfter, 'the in-flight answer came after notAfter')
  await until(() => c.counts.disconnects === 1, 'the connection closed after the answer')
  assert.equal(c.counts.connects, 1, 'one connection served both requests')
  await assert.rejects(c.get(), 'an expired certificate is refused at the handshake')
})

test('a mesh caller\'s pooled connection ends at the server certificate\'s notAfter: the next request opens a new connection (with the server\'s renewed certificate), 0 failed requests', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, PAYMENTS_NO_RETRIES)).status, 200)
  const ca = daemonCa(d)
  const roots = JSON.parse(readFileSync(join(d.dataDir, 'ca', 'ca.json'), 'utf8')).bundle.roots as string[]
  const first = await forge(ca, { uris: [PAYMENTS_ID], notAfter: new Date(Date.now() + 3000) })
  const renewed = await forge(ca, { uris: [PAYMENTS_ID] })
  const notAfter = Date.parse(new X509Certificate(first.certPem).validTo)
  const firstCert = new X509Certificate(first.certPem).fingerprint256
  const renewedCert = new X509Certificate(renewed.certPem).fingerprint256
  /** Requests served once no connection with the first certificate is open. */
  let afterFirstClosed = 0

  // A payments instance serving mTLS itself with a short-lived certificate, registered by its mesh.
  const conns: { socket: TLSSocket; cert: string; requests: number; closed: boolean }[] = []
  const server = https.createServer({ cert: first.certPem, key: first.keyPem, ca: roots, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const conn = conns.find((c) => c.socket === req.socket)
    if (conn) conn.requests++
    if (conns.every((c) => c.cert !== firstCert || c.closed)) afterFirstClosed++
    res.end('ok')
  })
  server.keepAliveTimeout = 60_000
  server.on('secureConnection', (socket: TLSSocket) => {
    const conn = { socket, cert: new X509Certificate((socket.getCertificate() as { raw: Buffer }).raw).fingerprint256, requests: 0, closed: false }
    conns.push(conn)
    socket.on('close', () => (conn.closed = true))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  await payments.register({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' })
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(checkout, 'payments', 1)

  const failed: string[] = []
  const hit = async () => {
    try {
      const res = await checkout.request('http://payments/')
      await res.body.text()
      if (res.statusCode !== 200) failed.push(`HTTP ${res.statusCode}`)
    } catch (err) {
      failed.push((err as Error).message)
    }
  }
  await hit()
  assert.equal(conns.length, 1)
  // The server renews: new connections get the new certificate, the open one keeps the first.
  server.setSecureContext({ cert: renewed.certPem, key: renewed.keyPem, ca: roots })
  // Back-to-back calls keep the first connection in use: only its certificate's expiry can end it.
  await until(async () => {
    await hit()
    return afterFirstClosed >= 5
  }, 'the connections with the first certificate closed and calls went on', notAfter - Date.now() + 8000)
  assert.deepEqual(failed, [], `failed calls: ${failed.slice(0, 3).join('; ')}`)
  assert.ok(Date.now() >= notAfter)
  const withFirst = conns.filter((c) => c.cert === firstCert)
  assert.ok(withFirst.reduce((n, c) => n + c.requests, 0) > 1, 'the first certificate\'s connection was reused while valid')
  assert.ok(withFirst.every((c) => c.closed))
  assert.ok(conns.every((c) => c.cert === firstCert || c.cert === renewedCert))
  assert.ok(conns.some((c) => c.cert === renewedCert && !c.closed && c.requests > 0), 'calls go over a connection with the renewed certificate')
})

/** ledger over gRPC with retries off. */
const LEDGER_NO_RETRIES = 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: ledger }\nspec:\n  protocol: grpc\n  retries: { attempts: 0 }\n'
const LEDGER_ID = 'spiffe://weft.local/ns/default/sa/ledger'

test('gRPC: ca retire closes the caller\'s channel whose connection has the server\'s certificate from the retired root; the next call connects anew; a stream open across it finishes; 0 failed calls (retries off)', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, LEDGER_NO_RETRIES)).status, 200)
  const ledger = await controlMesh(d, 'ledger')
  const peers: string[] = []
  const { port } = await startMeshedLedger(ledger, ledgerImpl('ledger', { onCall: (_m, call) => void peers.push(call.getPeer()) }))
  assert.ok(port > 0)
  const payments = await controlMesh(d, 'payments')
  const client = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    client.close()
    await payments.close()
    await ledger.close()
  })
  await waitEndpoints(payments, 'ledger', 1)
  await get(client, { id: 'first' })
  const firstPeer = peers.at(-1)!
  const oldIssuer = new X509Certificate(ledger.identity.current()!.certChainPem[0]!).issuer

  const rotated = await call(d.url, 'POST', '/v1/ca/rotate', d.adminToken)
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
  const issuerOf = (m: { certChainPem: readonly string[] } | undefined) => (m ? new X509Certificate(m.certChainPem[0]!).issuer : '')
  await until(() => [ledger, payments].every((m) => issuerOf(m.identity.current()) !== oldIssuer), 'both instances re-issued by the new root')
  await get(client, { id: 'overlap' })
  assert.equal(peers.at(-1), firstPeer, 'a root added: the channel keeps its connection')

  // A stream opened on the old connection, still open when root A goes.
  const stream = client.Chat()
  const echoes = collect<Entry>(stream)
  stream.write({ id: 'before', from: 'payments', amount: 0 })
  const retired = await call(d.url, 'POST', '/v1/ca/retire', d.adminToken)
  assert.equal(retired.status, 200, JSON.stringify(retired.body))
  await until(() => payments.identity.current()?.bundle.sequence === retired.body.bundle.sequence, 'payments holds the bundle without root A')
  const failed: string[] = []
  for (let i = 0; i < 20; i++) await get(client, { id: `after-${i}` }).catch((err: Error) => failed.push(err.message))
  assert.deepEqual(failed, [])
  assert.notEqual(peers.at(-1), firstPeer, 'calls after the retirement go over a new connection')
  stream.write({ id: 'after', from: 'payments', amount: 0 })
  stream.end()
  assert.deepEqual((await echoes).map((e) => e.id), ['before', 'after'], 'the stream on the old connection finished')
})

/** A grpc-js CertificateProvider whose identity certificate the test swaps (a server's renewal). */
function swappableProvider(ca: string, cert: { certPem: string; keyPem: string }) {
  const caListeners = new Set<(u: { caCertificate: Buffer } | null) => void>()
  const idListeners = new Set<(u: { certificate: Buffer; privateKey: Buffer } | null) => void>()
  let current = cert
  const id = () => ({ certificate: Buffer.from(current.certPem), privateKey: Buffer.from(current.keyPem) })
  return {
    addCaCertificateListener(l: (u: { caCertificate: Buffer } | null) => void) {
      caListeners.add(l)
      queueMicrotask(() => l({ caCertificate: Buffer.from(ca) }))
    },
    removeCaCertificateListener: (l: never) => void caListeners.delete(l),
    addIdentityCertificateListener(l: (u: { certificate: Buffer; privateKey: Buffer } | null) => void) {
      idListeners.add(l)
      queueMicrotask(() => l(id()))
    },
    removeIdentityCertificateListener: (l: never) => void idListeners.delete(l),
    renew(next: { certPem: string; keyPem: string }) {
      current = next
      for (const l of idListeners) l(id())
    },
  }
}

test('gRPC: a caller\'s channel is closed at the server certificate\'s notAfter; the next call connects anew (the server\'s renewed certificate), 0 failed calls', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, LEDGER_NO_RETRIES)).status, 200)
  const ca = daemonCa(d)
  const roots = (JSON.parse(readFileSync(join(d.dataDir, 'ca', 'ca.json'), 'utf8')).bundle.roots as string[]).join('\n')
  const first = await forge(ca, { uris: [LEDGER_ID], notAfter: new Date(Date.now() + 3000) })
  const notAfter = Date.parse(new X509Certificate(first.certPem).validTo)
  // A ledger serving mTLS itself (plain grpc-js), registered by its mesh.
  const provider = swappableProvider(roots, first)
  const peers: string[] = []
  const server = new grpc.Server()
  server.addService(LedgerService, ledgerImpl('ledger', { onCall: (_m, c) => void peers.push(c.getPeer()) }))
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.experimental.createCertificateProviderServerCredentials(provider as never, provider as never, true), (err, p) => (err ? reject(err) : resolve(p)))
  })
  const ledger = await controlMesh(d, 'ledger')
  await ledger.register({ port, host: '127.0.0.1', protocol: 'grpc' })
  const payments = await controlMesh(d, 'payments')
  const client = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    client.close()
    await payments.close()
    await ledger.close()
    server.forceShutdown()
  })
  await waitEndpoints(payments, 'ledger', 1)
  await get(client, { id: 'first' })
  const firstPeer = peers.at(-1)!
  provider.renew(await forge(ca, { uris: [LEDGER_ID] }))

  const failed: string[] = []
  await until(async () => {
    await get(client, { id: 'x' }).catch((err: Error) => failed.push(err.message))
    return peers.at(-1) !== firstPeer
  }, 'a call over a new connection', notAfter - Date.now() + 8000)
  assert.ok(Date.now() >= notAfter)
  assert.ok(peers.filter((p) => p === firstPeer).length > 1, 'the first connection was used while its certificate was valid')
  for (let i = 0; i < 5; i++) await get(client, { id: `after-${i}` }).catch((err: Error) => failed.push(err.message))
  assert.deepEqual(failed, [])
  assert.equal(peers.lastIndexOf(firstPeer) < peers.length - 5, true, 'no call went over the first connection after it')
})

test('gRPC: a caller\'s channel is closed at the notAfter of the certificate the caller presented on it; the next call connects with its renewed one, 0 failed calls', async (t) => {
  // Callers get 3 s certificates (renewed at about half of that); the ledger's is long-lived.
  const d = await startTestDaemon({ svidTtlMs: 3000 })
  t.after(() => d.daemon.close())
  assert.equal((await applyPolicy(d, LEDGER_NO_RETRIES)).status, 200)
  const ca = daemonCa(d)
  const roots = (JSON.parse(readFileSync(join(d.dataDir, 'ca', 'ca.json'), 'utf8')).bundle.roots as string[]).join('\n')
  const provider = swappableProvider(roots, await forge(ca, { uris: [LEDGER_ID] }))
  const calls: { peer: string; client: string | undefined }[] = []
  const server = new grpc.Server()
  server.addService(LedgerService, ledgerImpl('ledger', {
    onCall: (_m, c) => void calls.push({ peer: c.getPeer(), client: c.getAuthContext?.()?.sslPeerCertificate?.fingerprint256 }),
  }))
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.experimental.createCertificateProviderServerCredentials(provider as never, provider as never, true), (err, p) => (err ? reject(err) : resolve(p)))
  })
  const ledger = await controlMesh(d, 'ledger')
  await ledger.register({ port, host: '127.0.0.1', protocol: 'grpc' })
  const payments = await controlMesh(d, 'payments')
  const client = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    client.close()
    await payments.close()
    await ledger.close()
    server.forceShutdown()
  })
  await waitEndpoints(payments, 'ledger', 1)
  const own = payments.identity.current()!
  await get(client, { id: 'first' })
  const first = calls.at(-1)!
  assert.ok(first.client, 'the server saw the caller\'s certificate')

  const failed: string[] = []
  await until(async () => {
    await get(client, { id: 'x' }).catch((err: Error) => failed.push(err.message))
    return calls.at(-1)!.peer !== first.peer
  }, 'a call over a new connection', own.notAfter - Date.now() + 8000)
  assert.deepEqual(failed, [])
  assert.ok(calls.filter((c) => c.peer === first.peer).every((c) => c.client === first.client))
  assert.notEqual(calls.at(-1)!.client, first.client, 'the new connection presents the renewed certificate')
})
