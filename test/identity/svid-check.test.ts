import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { test } from 'node:test'
import { CertificateAuthority } from '../../src/identity/ca.js'
import { createCsr, generateKeyPair } from '../../src/identity/keys.js'
import { workloadId } from '../../src/identity/spiffe-id.js'
import { checkSvid } from '../../src/identity/svid-check.js'
import { x509 } from '../../src/identity/x509.js'
import { EKU, forge, MALFORMED_CLIENT_LEAVES } from './pki.js'

const TD = 'weft.local'
const opts = { timeout: 5000 }
const ca = CertificateAuthority.createRoot({ trustDomain: TD })
const checkout = workloadId(TD, 'default', 'checkout')

async function issued(): Promise<X509Certificate> {
  const signed = await (await ca).sign(await createCsr(await generateKeyPair(), checkout), { id: checkout })
  return new X509Certificate(signed.certChainPem[0]!)
}

test('a CA-issued SVID passes as client and as server, from node X509Certificate or DER', opts, async () => {
  const cert = await issued()
  for (const role of ['client', 'server'] as const) {
    const r = checkSvid(cert, { trustDomain: TD, role })
    assert.ok(r.ok)
    assert.equal(r.id.toString(), checkout.toString())
    assert.deepEqual(checkSvid(cert.raw, { trustDomain: TD, role }), r)
  }
})

test('a PeerCertificate as node hands it (checkServerIdentity, grpc-js) is cached by its fingerprint256; one without a fingerprint is keyed by its bytes, never by a shared empty key', opts, async () => {
  const good = await issued()
  const root = (await ca).toPem()
  const bad = new X509Certificate((await forge(root, MALFORMED_CLIENT_LEAVES[0]!.forge)).certPem)
  const legacy = { raw: good.raw, fingerprint256: good.fingerprint256 } as unknown as import('node:tls').PeerCertificate
  const r = checkSvid(legacy, { trustDomain: TD, role: 'server' })
  assert.ok(r.ok)
  assert.equal(r.id.toString(), checkout.toString())
  // Built by hand without fingerprints: each is judged on its own bytes, in either order.
  const noFp = (c: X509Certificate) => ({ raw: c.raw }) as unknown as import('node:tls').PeerCertificate
  assert.equal(checkSvid(noFp(bad), { trustDomain: TD, role: 'client' }).ok, false)
  assert.ok(checkSvid(noFp(good), { trustDomain: TD, role: 'client' }).ok)
  assert.equal(checkSvid(noFp(bad), { trustDomain: TD, role: 'client' }).ok, false)
})

test('B6 corpus: every malformed leaf is refused with a reason naming the rule', opts, async () => {
  const root = (await ca).toPem()
  for (const c of MALFORMED_CLIENT_LEAVES) {
    const leaf = new X509Certificate((await forge(root, c.forge)).certPem)
    const r = checkSvid(leaf, { trustDomain: TD, role: 'client' })
    assert.equal(r.ok, false, c.name)
    assert.match((r as { reason: string }).reason, c.reason, c.name)
  }
})

test('the role picks the EKU: serverAuth-only is a server but not a client, and the reverse', opts, async () => {
  const root = (await ca).toPem()
  const serverOnly = new X509Certificate((await forge(root, { uris: [checkout.toString()], eku: [EKU.serverAuth] })).certPem)
  assert.ok(checkSvid(serverOnly, { trustDomain: TD, role: 'server' }).ok)
  assert.match((checkSvid(serverOnly, { trustDomain: TD, role: 'client' }) as { reason: string }).reason, /clientAuth/)
  const clientOnly = new X509Certificate((await forge(root, { uris: [checkout.toString()], eku: [EKU.clientAuth] })).certPem)
  assert.ok(checkSvid(clientOnly, { trustDomain: TD, role: 'client' }).ok)
  assert.match((checkSvid(clientOnly, { trustDomain: TD, role: 'server' }) as { reason: string }).reason, /serverAuth/)
})

test('cached results still apply the trust domain and role of each call', opts, async () => {
  const cert = await issued()
  assert.ok(checkSvid(cert, { trustDomain: TD, role: 'client' }).ok)
  assert.match((checkSvid(cert, { trustDomain: 'other.td', role: 'client' }) as { reason: string }).reason, /not other\.td/)
  assert.ok(checkSvid(cert, { trustDomain: TD, role: 'server' }).ok)
})

test('garbage bytes and a repeated SAN extension are refused, not thrown', opts, async () => {
  assert.match((checkSvid(Buffer.from('not a certificate'), { trustDomain: TD, role: 'client' }) as { reason: string }).reason, /unreadable certificate/)
  const root = (await ca).toPem()
  const issuerCert = new x509.X509Certificate(root.certPem)
  const keys = await generateKeyPair()
  const { importPrivateKeyPem } = await import('../../src/identity/keys.js')
  const signer = await importPrivateKeyPem(root.keyPem)
  const twice = await x509.X509CertificateGenerator.create({
    subject: 'CN=x', issuer: issuerCert.subjectName, publicKey: keys.publicKey, signingKey: signer.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: checkout.toString() }]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://weft.local/ns/default/sa/admin' }]),
    ],
  })
  assert.match((checkSvid(Buffer.from(twice.rawData), { trustDomain: TD, role: 'client' }) as { reason: string }).reason, /repeats extension 2\.5\.29\.17/)
})

test('more distinct certificates than the cache holds are all still judged correctly', { timeout: 10_000 }, async () => {
  const good = await issued()
  const root = (await ca).toPem()
  const bad = new X509Certificate((await forge(root, { uris: [checkout.toString()], ca: true })).certPem)
  assert.equal(checkSvid(bad, { trustDomain: TD, role: 'client' }).ok, false)
  // Fill the cache past its bound with distinct (fake-DER) entries, then ask again.
  for (let i = 0; i < 1100; i++) checkSvid(Buffer.from(`junk ${i}`), { trustDomain: TD, role: 'client' })
  assert.equal(checkSvid(bad, { trustDomain: TD, role: 'client' }).ok, false)
  assert.ok(checkSvid(good, { trustDomain: TD, role: 'client' }).ok)
})
