// Real mTLS handshakes on 127.0.0.1 with SVIDs from the CA library, the way the data plane uses
// tls-material: what is accepted, what is refused at the handshake, rotation and the intermediate case.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { connect, createServer, TLSSocket } from 'node:tls'
import { isWeftError } from '../../src/errors/index.js'
import { addRoot, newBundle, newerBundle, removeRoot, type TrustBundle } from '../../src/identity/bundle.js'
import { CertificateAuthority } from '../../src/identity/ca.js'
import { createCsr, generateKeyPair } from '../../src/identity/keys.js'
import { workloadId, type SpiffeId } from '../../src/identity/spiffe-id.js'
import { clientTlsOptions, secureContextOptions, serverSecureContext, serverTlsOptions, verifyClientPeer, type TlsMaterial } from '../../src/identity/tls-material.js'
import { forge, forgeIntermediate, MALFORMED_CLIENT_LEAVES, mtlsRequest, startMtlsServer, type ClientOutcome, type MtlsServer, type Outcome } from './pki.js'

const TD = 'weft.local'
const payments = workloadId(TD, 'default', 'payments')
const ledger = workloadId(TD, 'default', 'ledger')
const checkout = workloadId(TD, 'default', 'checkout')
const opts = { timeout: 5000 }

async function svid(ca: CertificateAuthority, id: SpiffeId, bundle: TrustBundle = ca.bundle()): Promise<TlsMaterial> {
  const keys = await generateKeyPair()
  const signed = await ca.sign(await createCsr(keys, id), { id })
  return { certChainPem: signed.certChainPem, keyPem: keys.privateKeyPem, bundle }
}

let ca: CertificateAuthority
let paymentsServer: MtlsServer
let checkoutClient: TlsMaterial

before(async () => {
  ca = await CertificateAuthority.createRoot({ trustDomain: TD })
  paymentsServer = await startMtlsServer(await svid(ca, payments), TD)
  checkoutClient = await svid(ca, checkout)
})
after(() => paymentsServer.close())

/** One connection to `server`: the client's and the server's view of it. */
async function handshake(server: MtlsServer, client: TlsMaterial, expected: SpiffeId = payments): Promise<[ClientOutcome, Outcome]> {
  return Promise.all([mtlsRequest(server.port, client, expected), server.next()])
}

async function assertRefused(server: MtlsServer, client: TlsMaterial, why: RegExp, expected: SpiffeId = payments): Promise<string> {
  const [c, s] = await handshake(server, client, expected)
  assert.equal(c.ok, false, 'the client got no answer')
  assert.equal(s.ok, false, 'the server accepted no peer')
  const reason = (s as { reason: string }).reason
  assert.match(reason, why)
  return reason
}

function forgedClient(forged: { certPem: string; keyPem: string }, bundle: TrustBundle = ca.bundle()): TlsMaterial {
  return { certChainPem: [forged.certPem], keyPem: forged.keyPem, bundle }
}

test('mTLS with two SVIDs: the server sees the client\'s SPIFFE ID and the client the server\'s', opts, async () => {
  const [c, s] = await handshake(paymentsServer, checkoutClient)
  assert.deepEqual(s, { ok: true, peer: checkout.toString() })
  assert.ok(c.ok)
  assert.equal(c.serverId, payments.toString())
  assert.deepEqual(JSON.parse(c.body), { peer: checkout.toString() })
})

test('secureContextOptions serve a tls.createServer the same way', opts, async () => {
  const material = await svid(ca, payments)
  const server = createServer({ ...secureContextOptions(material), requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
    const peer = verifyClientPeer(socket, TD)
    socket.end(typeof peer === 'string' ? `refused: ${peer}` : peer.toString())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const socket = connect({ ...clientTlsOptions(checkoutClient, payments), host: '127.0.0.1', port: (server.address() as AddressInfo).port })
    let body = ''
    socket.setEncoding('utf8').on('data', (d: string) => (body += d))
    await once(socket, 'end')
    assert.equal(body, checkout.toString())
  } finally {
    server.close()
  }
})

test('refused at the handshake: a client certificate from an untrusted CA', opts, async () => {
  const stranger = await CertificateAuthority.createRoot({ trustDomain: TD })
  const client = await svid(stranger, checkout, newBundle(TD, [...stranger.bundleRoots, ...ca.bundleRoots]))
  await assertRefused(paymentsServer, client, /handshake: the client certificate did not verify against the trust bundle \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)\)/)
})

test('refused at the handshake: an expired client certificate', opts, async () => {
  const expired = await forge(ca.toPem(), { uris: [checkout.toString()], notBefore: new Date(Date.now() - 7_200_000), notAfter: new Date(Date.now() - 3_600_000) })
  await assertRefused(paymentsServer, forgedClient(expired), /handshake: .*\(CERT_HAS_EXPIRED\)/)
})

test('refused at the handshake: a client with no certificate', opts, async () => {
  const s = paymentsServer.next()
  const socket = connect({ host: '127.0.0.1', port: paymentsServer.port, ca: [...ca.bundleRoots], checkServerIdentity: () => undefined })
  const clientError = new Promise<Error | undefined>((resolve) => {
    let error: Error | undefined
    socket.on('error', (err) => (error = err)).on('close', () => resolve(error))
  })
  socket.resume()
  assert.match(String((await clientError)?.message), /certificate required/)
  assert.match(((await s) as { reason: string }).reason, /handshake:/)
})

test('refused at the handshake: a certificate from another trust domain whose root we do not trust', opts, async () => {
  const other = await CertificateAuthority.createRoot({ trustDomain: 'other.td' })
  const client = await svid(other, workloadId('other.td', 'default', 'checkout'), newBundle('other.td', [...other.bundleRoots, ...ca.bundleRoots]))
  await assertRefused(paymentsServer, client, /handshake:/)
})

test('refused at the handshake: a certificate whose root we trust but whose ID is in another trust domain', opts, async () => {
  const other = await CertificateAuthority.createRoot({ trustDomain: 'other.td' })
  const both = newBundle(TD, [...ca.bundleRoots, ...other.bundleRoots])
  const server = await startMtlsServer(await svid(ca, payments, both), TD)
  try {
    const client = await svid(other, workloadId('other.td', 'default', 'checkout'), both)
    await assertRefused(server, client, /spiffe:\/\/other\.td\/ns\/default\/sa\/checkout is in trust domain other\.td, not weft\.local/)
  } finally {
    await server.close()
  }
})

test('refused at the handshake: every leaf of the malformed-SVID corpus (B6), signed by the trusted CA', { timeout: 15_000 }, async () => {
  const byOpenSsl: string[] = []
  for (const c of MALFORMED_CLIENT_LEAVES) {
    const reason = await assertRefused(paymentsServer, forgedClient(await forge(ca.toPem(), c.forge)), /./)
    // OpenSSL already refuses some (an EKU without clientAuth is the wrong purpose); the rest must
    // be refused by the SVID check, for the reason the corpus names.
    if (reason.startsWith('handshake:')) byOpenSsl.push(c.name)
    else assert.match(reason, c.reason, c.name)
  }
  assert.deepEqual(byOpenSsl.filter((name) => name !== 'EKU without clientAuth'), [], 'only the purpose check is OpenSSL\'s')
})

test('refused at the handshake: the client expects payments and the server presents ledger', opts, async () => {
  const server = await startMtlsServer(await svid(ca, ledger), TD)
  try {
    const [c, s] = await handshake(server, checkoutClient, payments)
    assert.equal(s.ok, false)
    assert.equal(c.ok, false)
    const err = (c as { error: Error }).error
    assert.ok(isWeftError(err, 'WEFT_ERR_UNAUTHENTICATED'), String(err))
    assert.equal(err.message, 'the server is spiffe://weft.local/ns/default/sa/ledger, expected spiffe://weft.local/ns/default/sa/payments')
    assert.deepEqual(err.details, { expected: payments.toString(), got: ledger.toString() })
    // The same server is fine for a client that expects ledger.
    const [ok] = await handshake(server, checkoutClient, ledger)
    assert.ok(ok.ok)
  } finally {
    await server.close()
  }
})

test('refused at the handshake: a server whose leaf is a CA or lacks serverAuth', opts, async () => {
  for (const [forged, why] of [
    [{ uris: [payments.toString()], ca: true }, /server certificate refused .*cA=true/],
    [{ uris: [payments.toString()], eku: ['1.3.6.1.5.5.7.3.2'] }, /unsuitable certificate purpose/],
  ] as const) {
    const cert = await forge(ca.toPem(), forged)
    const server = await startMtlsServer(forgedClient(cert), TD)
    try {
      const [c] = await handshake(server, checkoutClient, payments)
      assert.equal(c.ok, false)
      assert.match(String((c as { error: Error }).error?.message), why)
    } finally {
      await server.close()
    }
  }
})

test('an operator-supplied intermediate: leaf chains verify against a bundle holding only the root', opts, async () => {
  const root = await CertificateAuthority.createRoot({ trustDomain: TD })
  const inter = await forgeIntermediate(root.toPem(), TD)
  const intermediate = await CertificateAuthority.fromPem({ ...inter, bundleRoots: root.bundleRoots[0] })
  assert.deepEqual(intermediate.bundleRoots, root.bundleRoots)
  const server = await startMtlsServer(await svid(intermediate, payments), TD)
  try {
    const client = await svid(intermediate, checkout)
    assert.equal(client.certChainPem.length, 2)
    const [c, s] = await handshake(server, client)
    assert.deepEqual(s, { ok: true, peer: checkout.toString() })
    assert.ok(c.ok)
    // Without its chain, the leaf does not verify: the chain really is needed.
    await assertRefused(server, { ...client, certChainPem: client.certChainPem.slice(0, 1) }, /handshake:/)
  } finally {
    await server.close()
  }
})

test('bundle rotation: A and B both work in overlap; after A is retired an A-signed peer is refused; a stale bundle is ignored (F13)', { timeout: 10_000 }, async () => {
  const a = await CertificateAuthority.createRoot({ trustDomain: TD })
  const b = await CertificateAuthority.createRoot({ trustDomain: TD })
  const overlap = addRoot(a.bundle(1), b.bundleRoots[0]!)
  const serverMaterial = await svid(b, payments, overlap)
  const server = await startMtlsServer(serverMaterial, TD)
  try {
    const fromA = await svid(a, checkout, overlap)
    const fromB = await svid(b, checkout, overlap)
    assert.ok((await handshake(server, fromA))[0].ok, 'A-signed works in overlap')
    assert.ok((await handshake(server, fromB))[0].ok, 'B-signed works in overlap')

    const retired = removeRoot(overlap, a.bundleRoots[0]!)
    assert.equal(retired.sequence, overlap.sequence + 1)
    const held = newerBundle(overlap, retired) ?? overlap
    assert.equal(held, retired)
    server.material = { ...serverMaterial, bundle: held }
    assert.notEqual(serverSecureContext(server.material), serverSecureContext(serverMaterial), 'a new bundle is a new secure context')
    await assertRefused(server, fromA, /handshake:/)
    assert.ok((await handshake(server, { ...fromB, bundle: held }))[0].ok, 'B-signed still works')

    // The pre-retire bundle pushed again (lower sequence) changes nothing: A stays refused.
    assert.equal(newerBundle(held, overlap), undefined)
    await assertRefused(server, fromA, /handshake:/)
  } finally {
    await server.close()
  }
})

test('a bare server-side TLSSocket gets no chain verdict from node, so verifyClientPeer refuses even a good client', opts, async () => {
  // The pitfall serverTlsOptions warns about: without a tls.Server, node neither rejects a bad
  // chain nor sets socket.authorized. Failing closed here keeps such a front door from accepting
  // a self-made certificate.
  const material = await svid(ca, payments)
  const verdict = new Promise<string>((resolve) => {
    const server = createNetServer((raw) => {
      const tls = new TLSSocket(raw, { isServer: true, secureContext: serverSecureContext(material), requestCert: true, rejectUnauthorized: true })
      tls.on('error', () => {})
      tls.once('secure', () => {
        const peer = verifyClientPeer(tls, TD)
        resolve(typeof peer === 'string' ? peer : peer.toString())
        tls.destroy()
        server.close()
      })
    }).listen(0, '127.0.0.1', () => {
      void mtlsRequest((server.address() as AddressInfo).port, checkoutClient, payments)
    })
  })
  assert.match(await verdict, /no chain verification result on this socket/)
})

test('no session is resumed: every connection is a full handshake that checks the certificate again', opts, async () => {
  const [first] = await handshake(paymentsServer, checkoutClient)
  assert.ok(first.ok)
  const session = first.session
  const [c, s] = await Promise.all([mtlsRequest(paymentsServer.port, checkoutClient, payments, session), paymentsServer.next()])
  assert.ok(c.ok && s.ok)
  assert.equal(c.reused, false)
})

test('TLS objects are built once per material: the same context and client options for every connection', opts, async () => {
  const m = checkoutClient
  assert.equal(serverSecureContext(m), serverSecureContext(m))
  assert.equal(secureContextOptions(m), secureContextOptions(m))
  assert.equal(clientTlsOptions(m, payments), clientTlsOptions(m, workloadId(TD, 'default', 'payments')))
  assert.notEqual(clientTlsOptions(m, payments), clientTlsOptions(m, ledger))
  assert.equal(clientTlsOptions(m, payments).secureContext, serverSecureContext(m))
  assert.ok(Object.isFrozen(clientTlsOptions(m, payments)))
  const renewed = { ...m }
  assert.notEqual(serverSecureContext(renewed), serverSecureContext(m))
  assert.deepEqual(serverTlsOptions(m, 'PERMISSIVE'), serverTlsOptions(m, 'STRICT'))
})

test('bad material and DISABLE are refused with WEFT_ERR_INVALID_ARG', opts, async () => {
  const other = await generateKeyPair()
  assert.throws(() => serverSecureContext({ ...checkoutClient, keyPem: other.privateKeyPem }), (err: unknown) => isWeftError(err, 'WEFT_ERR_INVALID_ARG') && /invalid TLS material/.test(err.message))
  assert.throws(() => serverSecureContext({ ...checkoutClient, certChainPem: [] }), /certChainPem is empty/)
  assert.throws(() => serverTlsOptions(checkoutClient, 'DISABLE'), /DISABLE serves no TLS/)
})
