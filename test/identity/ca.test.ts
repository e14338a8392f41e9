import assert from 'node:assert/strict'
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto'
import { test } from 'node:test'
import { isWeftError } from '../../src/errors/index.js'
import { CertificateAuthority } from '../../src/identity/ca.js'
import { createCsr, generateKeyPair, importPrivateKeyPem } from '../../src/identity/keys.js'
import { parseSpiffeId, workloadId } from '../../src/identity/spiffe-id.js'
import { x509 } from '../../src/identity/x509.js'
import { forge, forgeIntermediate, KU } from './pki.js'

const TD = 'weft.local'
const payments = workloadId(TD, 'default', 'payments')
const ledger = workloadId(TD, 'default', 'ledger')
const opts = { timeout: 5000 }

const rootCa = CertificateAuthority.createRoot({ trustDomain: TD })

test('generateKeyPair makes a P-256 key whose PKCS#8 and SPKI PEMs node:crypto loads', opts, async () => {
  const keys = await generateKeyPair()
  assert.match(keys.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/)
  assert.match(keys.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/)
  const priv = createPrivateKey(keys.privateKeyPem)
  assert.equal(priv.asymmetricKeyDetails?.namedCurve, 'prime256v1')
  assert.equal(createPublicKey(priv).export({ type: 'spki', format: 'pem' }), createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'pem' }))
})

test('createCsr makes a self-signed PKCS#10 request carrying exactly the URI SAN', opts, async () => {
  const csr = new x509.Pkcs10CertificateRequest(await createCsr(await generateKeyPair(), payments))
  assert.ok(await csr.verify())
  const san = csr.getExtension('2.5.29.17') as x509.SubjectAlternativeNameExtension
  assert.deepEqual(san.names.toJSON(), [{ type: 'url', value: payments.toString() }])
  await assert.rejects(createCsr(await generateKeyPair(), 'spiffe://TD/x'), /must be lowercase/)
})

test('the root CA: self-signed, cA=true and keyCertSign+cRLSign critical, URI SAN spiffe://td, 10 years', opts, async () => {
  const ca = await rootCa
  const pem = ca.toPem()
  const cert = new X509Certificate(pem.certPem)
  assert.ok(cert.ca)
  assert.equal(cert.subjectAltName, `URI:spiffe://${TD}`)
  assert.ok(cert.checkIssued(cert) && cert.verify(cert.publicKey))
  const p = new x509.X509Certificate(pem.certPem)
  const bc = p.getExtension(x509.BasicConstraintsExtension)!
  assert.ok(bc.ca && bc.critical)
  const ku = p.getExtension(x509.KeyUsagesExtension)!
  assert.equal(ku.usages, KU.keyCertSign | KU.cRLSign)
  assert.ok(ku.critical)
  const years = (p.notAfter.getTime() - Date.now()) / (365 * 24 * 3_600_000)
  assert.ok(years > 9.99 && years <= 10, `${years}`)
  assert.deepEqual(pem.bundleRoots, [pem.certPem])
  assert.deepEqual(pem.chainPem, [])
  assert.deepEqual(ca.bundle(7), { trustDomain: TD, sequence: 7, roots: [pem.certPem] })
})

test('the CA signs a CSR: node reads exactly URI:spiffe://…, and the leaf follows X509-SVID (M1, M2, M6)', opts, async () => {
  const ca = await rootCa
  const before = Date.now()
  const signed = await ca.sign(await createCsr(await generateKeyPair(), payments), { id: payments })
  assert.equal(signed.certChainPem.length, 1, 'a root CA sends only the leaf')
  const leaf = new X509Certificate(signed.certChainPem[0]!)
  assert.equal(leaf.subjectAltName, 'URI:spiffe://weft.local/ns/default/sa/payments')
  assert.equal(leaf.ca, false)
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
  assert.equal(leaf.subject, 'CN=payments')
  assert.ok(leaf.verify(new X509Certificate(ca.toPem().certPem).publicKey))
  const p = new x509.X509Certificate(signed.certChainPem[0]!)
  assert.ok(p.getExtension(x509.BasicConstraintsExtension)!.critical)
  const ku = p.getExtension(x509.KeyUsagesExtension)!
  assert.ok(ku.critical)
  assert.equal(ku.usages, KU.digitalSignature | KU.keyAgreement)
  // 128 random bits: a positive INTEGER of 16 bytes, or 17 with a leading zero when the top bit is set.
  assert.match(signed.serial, /^[0-9a-f]{1,32}$/)
  assert.equal(signed.serial, p.serialNumber.toLowerCase())
  assert.ok(Math.abs(signed.notBefore - (before - 5 * 60_000)) < 2000, 'backdated 5 min')
  assert.ok(Math.abs(signed.notAfter - (before + 24 * 3_600_000)) < 2000, 'lives 24 h')
  assert.equal(signed.notAfter, new Date(leaf.validTo).getTime())
})

test('serial numbers differ between leaves', opts, async () => {
  const ca = await rootCa
  const keys = await generateKeyPair()
  const csr = await createCsr(keys, payments)
  const serials = new Set<string>()
  for (let i = 0; i < 5; i++) serials.add((await ca.sign(csr, { id: payments })).serial)
  assert.equal(serials.size, 5)
})

test('ttlMs and backdateMs set the validity; the leaf never outlives the CA', opts, async () => {
  const ca = await CertificateAuthority.createRoot({ trustDomain: TD, ttlMs: 3_600_000 })
  const csr = await createCsr(await generateKeyPair(), payments)
  const now = Date.now()
  const short = await ca.sign(csr, { id: payments, ttlMs: 60_000, backdateMs: 30_000 })
  assert.ok(Math.abs(short.notAfter - (now + 60_000)) < 2000)
  assert.ok(Math.abs(short.notBefore - (now - 30_000)) < 2000)
  const capped = await ca.sign(csr, { id: payments, ttlMs: 48 * 3_600_000 })
  assert.equal(capped.notAfter, ca.notAfter)
  await assert.rejects(ca.sign(csr, { id: payments, ttlMs: 0 }), /ttlMs must be a positive/)
  await assert.rejects(ca.sign(csr, { id: payments, backdateMs: -1 }), /backdateMs/)
})

test('a CSR for another identity is refused with WEFT_ERR_FORBIDDEN naming both IDs', opts, async () => {
  const ca = await rootCa
  const csr = await createCsr(await generateKeyPair(), ledger)
  await assert.rejects(ca.sign(csr, { id: payments }), (err: unknown) => {
    assert.ok(isWeftError(err, 'WEFT_ERR_FORBIDDEN'))
    assert.match(err.message, /asks for "spiffe:\/\/weft\.local\/ns\/default\/sa\/ledger" but the caller is spiffe:\/\/weft\.local\/ns\/default\/sa\/payments/)
    assert.deepEqual(err.details, { requested: ledger.toString(), expected: payments.toString() })
    return true
  })
})

test('a CSR with two URI SANs, one of them the caller, is refused too', opts, async () => {
  const ca = await rootCa
  const keys = await generateKeyPair()
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: payments.toString() }, { type: 'url', value: 'spiffe://weft.local/ns/kube-system/sa/admin' }])],
  })
  await assert.rejects(ca.sign(csr.toString('pem'), { id: payments }), (err: unknown) => isWeftError(err, 'WEFT_ERR_FORBIDDEN'))
})

test('a CSR with no SAN gets the caller identity; its subject and DNS SANs are not copied', opts, async () => {
  const ca = await rootCa
  const keys = await generateKeyPair()
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=admin, O=evil', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'payments.example.com' }])],
  })
  const signed = await ca.sign(csr.toString('pem'), { id: payments })
  const leaf = new X509Certificate(signed.certChainPem[0]!)
  assert.equal(leaf.subjectAltName, `URI:${payments.toString()}`)
  assert.equal(leaf.subject, 'CN=payments')
})

test('a CSR whose signature does not verify, or that is not a CSR, is refused', opts, async () => {
  const ca = await rootCa
  const csrPem = await createCsr(await generateKeyPair(), payments)
  const der = Buffer.from(x509.PemConverter.decodeFirst(csrPem))
  der.writeUInt8(der[der.length - 5]! ^ 0x01, der.length - 5) // inside the signature
  await assert.rejects(ca.sign(x509.PemConverter.encode(der, 'CERTIFICATE REQUEST'), { id: payments }), (err: unknown) => isWeftError(err, 'WEFT_ERR_INVALID_ARG') && /signature/.test(err.message))
  await assert.rejects(ca.sign('not a csr', { id: payments }), (err: unknown) => isWeftError(err, 'WEFT_ERR_INVALID_ARG') && /not a readable PKCS#10/.test(err.message))
})

test('a CSR with a non-P-256 key is refused', opts, async () => {
  const ca = await rootCa
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } as never })
  await assert.rejects(ca.sign(csr.toString('pem'), { id: payments }), /ECDSA P-256, got ECDSA P-384/)
})

test('sign refuses an id outside its trust domain, a trust-domain ID, and a hand-made invalid id', opts, async () => {
  const ca = await rootCa
  const csr = await createCsr(await generateKeyPair(), payments)
  await assert.rejects(ca.sign(csr, { id: workloadId('other.td', 'default', 'payments') }), /not in this CA's trust domain weft\.local/)
  await assert.rejects(ca.sign(csr, { id: parseSpiffeId('spiffe://weft.local') }), /has no path/)
  const fake = { trustDomain: TD, path: '/../x', toString: () => 'spiffe://weft.local/../x' }
  await assert.rejects(ca.sign(csr, { id: fake }), (err: unknown) => isWeftError(err, 'WEFT_ERR_INVALID_ARG'))
})

test('toPem round-trips through fromPem: the reloaded CA signs leaves the same root verifies', opts, async () => {
  const ca = await rootCa
  const reloaded = await CertificateAuthority.fromPem(ca.toPem())
  assert.equal(reloaded.trustDomain, TD)
  assert.deepEqual(reloaded.bundleRoots, ca.bundleRoots)
  const signed = await reloaded.sign(await createCsr(await generateKeyPair(), payments), { id: payments })
  assert.ok(new X509Certificate(signed.certChainPem[0]!).verify(new X509Certificate(ca.toPem().certPem).publicKey))
})

test('an operator intermediate: its chain goes out with every leaf and the bundle is the given roots', opts, async () => {
  const root = (await CertificateAuthority.createRoot({ trustDomain: TD })).toPem()
  const inter = await forgeIntermediate(root, TD)
  const ca = await CertificateAuthority.fromPem({ certPem: inter.certPem, keyPem: inter.keyPem, bundleRoots: root.certPem })
  assert.equal(ca.trustDomain, TD)
  assert.deepEqual(ca.bundleRoots, [root.certPem])
  const signed = await ca.sign(await createCsr(await generateKeyPair(), payments), { id: payments })
  assert.equal(signed.certChainPem.length, 2)
  assert.equal(signed.certChainPem[1], new X509Certificate(inter.certPem).toString())
  const [leaf, issuer] = signed.certChainPem.map((p) => new X509Certificate(p))
  assert.ok(leaf!.verify(issuer!.publicKey) && issuer!.verify(new X509Certificate(root.certPem).publicKey))
  // A file with the intermediate and the root concatenated: the root is dropped from the chain.
  const fromFile = await CertificateAuthority.fromPem({ certPem: inter.certPem + root.certPem, keyPem: inter.keyPem, bundleRoots: [root.certPem] })
  assert.equal((await fromFile.sign(await createCsr(await generateKeyPair(), payments), { id: payments })).certChainPem.length, 2)
  assert.deepEqual(fromFile.toPem().chainPem, [])
})

test('fromPem refuses what cannot sign SVIDs, naming the problem', opts, async () => {
  const root = (await CertificateAuthority.createRoot({ trustDomain: TD })).toPem()
  const other = (await CertificateAuthority.createRoot({ trustDomain: TD })).toPem()
  const inter = await forgeIntermediate(root, TD)
  const leaf = await forge(root, { uris: [payments.toString()] })
  const noKeyCertSign = await forge(root, { ca: true, keyUsage: KU.cRLSign, eku: null, uris: [`spiffe://${TD}`] })
  const withPath = await forge(root, { ca: true, keyUsage: KU.keyCertSign, eku: null, uris: [`spiffe://${TD}/ns/x`] })
  const noSan = await forge(root, { ca: true, keyUsage: KU.keyCertSign, eku: null })
  const expired = await forge(root, { ca: true, keyUsage: KU.keyCertSign, eku: null, uris: [`spiffe://${TD}`], notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) })
  const cases: Array<[Parameters<typeof CertificateAuthority.fromPem>[0], RegExp]> = [
    [{ certPem: root.certPem, keyPem: other.keyPem }, /not the private key of certPem/],
    [{ certPem: 'nothing', keyPem: root.keyPem }, /no PEM certificate/],
    [{ certPem: leaf.certPem, keyPem: leaf.keyPem }, /not a CA certificate/],
    [{ certPem: noKeyCertSign.certPem, keyPem: noKeyCertSign.keyPem, bundleRoots: root.certPem }, /no keyCertSign/],
    [{ certPem: withPath.certPem, keyPem: withPath.keyPem, bundleRoots: root.certPem }, /not a trust-domain ID/],
    [{ certPem: noSan.certPem, keyPem: noSan.keyPem, bundleRoots: root.certPem }, /give trustDomain/],
    [{ certPem: expired.certPem, keyPem: expired.keyPem, bundleRoots: root.certPem }, /expired/],
    [{ certPem: inter.certPem, keyPem: inter.keyPem }, /intermediate: bundleRoots must give/],
    [{ certPem: inter.certPem, keyPem: inter.keyPem, bundleRoots: other.certPem }, /does not end at any of bundleRoots/],
    [{ certPem: root.certPem, keyPem: root.keyPem, trustDomain: 'other.td' }, /for trust domain weft\.local, not other\.td/],
    [{ certPem: root.certPem, keyPem: root.keyPem, bundleRoots: other.certPem }, /not in bundleRoots/],
    [{ certPem: root.certPem, keyPem: 'junk' }, /invalid private key/],
  ]
  for (const [options, reason] of cases) {
    await assert.rejects(CertificateAuthority.fromPem(options), (err: unknown) => isWeftError(err, 'WEFT_ERR_INVALID_ARG') && reason.test(err.message), String(reason))
  }
  // With the trust domain given, a CA certificate without a URI SAN is accepted.
  assert.equal((await CertificateAuthority.fromPem({ certPem: noSan.certPem, keyPem: noSan.keyPem, bundleRoots: root.certPem, trustDomain: TD })).trustDomain, TD)
})

test('importPrivateKeyPem refuses keys that are not P-256', opts, async () => {
  const { generateKeyPairSync } = await import('node:crypto')
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  await assert.rejects(importPrivateKeyPem(rsa), /ECDSA P-256 keys, got rsa/)
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string
  await assert.rejects(importPrivateKeyPem(p384), /got EC secp384r1/)
  const sec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string
  assert.match((await importPrivateKeyPem(sec1)).privateKeyPem, /BEGIN PRIVATE KEY/)
})

test('createRoot validates its options', opts, async () => {
  await assert.rejects(CertificateAuthority.createRoot({ trustDomain: 'Weft.Local' }), /invalid trust domain/)
  await assert.rejects(CertificateAuthority.createRoot({ trustDomain: TD, ttlMs: -1 }), /ttlMs must be a positive/)
})
