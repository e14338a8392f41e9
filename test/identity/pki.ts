// Test PKI: certificates the CA would never sign (malformed SVIDs, expired leaves, intermediates),
// built with @peculiar/x509 directly, and a loopback mTLS server and client built the way the data
// plane uses src/identity/tls-material.
import { once } from 'node:events'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { connect, createServer as createTlsServer, type TLSSocket } from 'node:tls'
import type { CaPem } from '../../src/identity/ca.js'
import { generateKeyPair, importPrivateKeyPem } from '../../src/identity/keys.js'
import type { SpiffeId } from '../../src/identity/spiffe-id.js'
import { clientTlsOptions, handshakeRefusal, secureContextOptions, serverTlsOptions, verifyClientPeer, type TlsMaterial } from '../../src/identity/tls-material.js'
import { EC_P256, x509 } from '../../src/identity/x509.js'

const HOUR = 3_600_000
export const { KeyUsageFlags: KU, ExtendedKeyUsage: EKU } = x509

export interface ForgeOptions {
  /** URI SANs; default none. */
  uris?: readonly string[]
  /** basic constraints cA; default false. */
  ca?: boolean
  /** Key usage flags (critical); null: no extension. Default digitalSignature. */
  keyUsage?: number | null
  /** EKU OIDs; null: no extension. Default serverAuth + clientAuth. */
  eku?: readonly string[] | null
  notBefore?: Date
  notAfter?: Date
}

/** A certificate signed by `issuer` with exactly the given (possibly invalid) contents. */
export async function forge(issuer: Pick<CaPem, 'certPem' | 'keyPem'>, o: ForgeOptions = {}): Promise<{ certPem: string; keyPem: string }> {
  const issuerCert = new x509.X509Certificate(issuer.certPem)
  const signer = await importPrivateKeyPem(issuer.keyPem)
  const keys = await generateKeyPair()
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(o.ca ?? false, undefined, true)]
  const keyUsage = o.keyUsage === undefined ? KU.digitalSignature : o.keyUsage
  if (keyUsage !== null) extensions.push(new x509.KeyUsagesExtension(keyUsage, true))
  const eku = o.eku === undefined ? [EKU.serverAuth, EKU.clientAuth] : o.eku
  if (eku !== null) extensions.push(new x509.ExtendedKeyUsageExtension([...eku]))
  if (o.uris && o.uris.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(o.uris.map((value) => ({ type: 'url' as const, value }))))
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey))
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey))
  const cert = await x509.X509CertificateGenerator.create({
    subject: [{ CN: ['forged'] }],
    issuer: issuerCert.subjectName,
    notBefore: o.notBefore ?? new Date(Date.now() - HOUR),
    notAfter: o.notAfter ?? new Date(Date.now() + HOUR),
    publicKey: keys.publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: EC_P256,
    extensions,
  })
  return { certPem: cert.toString('pem'), keyPem: keys.privateKeyPem }
}

/** An intermediate CA for `trustDomain` signed by `root` (what an operator's PKI would hand the daemon). */
export function forgeIntermediate(root: Pick<CaPem, 'certPem' | 'keyPem'>, trustDomain: string): Promise<{ certPem: string; keyPem: string }> {
  return forge(root, { ca: true, keyUsage: KU.keyCertSign | KU.cRLSign, eku: null, uris: [`spiffe://${trustDomain}`] })
}

export type Outcome = { ok: true; peer: string } | { ok: false; reason: string }

/**
 * A loopback mTLS server wired the way the front door should be: a plain net.Server hands each
 * connection to a non-listening tls.Server (requestCert + rejectUnauthorized, so node enforces
 * OpenSSL's chain verdict), then verifyClientPeer checks the leaf and the server answers the peer's ID.
 */
export interface MtlsServer {
  readonly port: number
  /** The material new connections use; setting it swaps the secure context (rotation). */
  material: TlsMaterial
  /** The server-side outcome of the next connection. */
  next(): Promise<Outcome>
  close(): Promise<void>
}

export async function startMtlsServer(material: TlsMaterial, trustDomain: string): Promise<MtlsServer> {
  const waiting: Array<(o: Outcome) => void> = []
  const done: Outcome[] = []
  const record = (o: Outcome): void => {
    const w = waiting.shift()
    if (w) w(o)
    else done.push(o)
  }
  const state = { material }
  const tlsServer = createTlsServer({ ...serverTlsOptions(material, 'STRICT'), handshakeTimeout: 3000 })
  tlsServer.on('tlsClientError', (err, tls) => record({ ok: false, reason: `handshake: ${handshakeRefusal(err, tls)}` }))
  tlsServer.on('secureConnection', (tls: TLSSocket) => {
    tls.on('error', () => {})
    const peer = verifyClientPeer(tls, trustDomain)
    if (typeof peer === 'string') {
      record({ ok: false, reason: peer })
      tls.destroy()
      return
    }
    record({ ok: true, peer: peer.toString() })
    tls.end(JSON.stringify({ peer: peer.toString() }))
  })
  const raws = new Set<Socket>()
  const server: Server = createServer((raw) => {
    raws.add(raw)
    raw.on('close', () => raws.delete(raw))
    tlsServer.emit('connection', raw)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    get material() {
      return state.material
    },
    set material(m: TlsMaterial) {
      state.material = m
      tlsServer.setSecureContext(secureContextOptions(m))
    },
    next: () => new Promise<Outcome>((resolve) => {
      const o = done.shift()
      if (o) resolve(o)
      else waiting.push(resolve)
    }),
    close: async () => {
      for (const s of raws) s.destroy()
      server.close()
      await once(server, 'close')
    },
  }
}

export type ClientOutcome =
  | { ok: true; serverId: string; body: string; reused: boolean; session: Buffer | undefined }
  | { ok: false; error: Error | undefined; code: string | undefined }

/**
 * Connects with `clientTlsOptions(material, expected)` and reads the answer. A connection the
 * server cuts (TLS 1.3 clients finish before the server judges their certificate) counts as
 * refused: no answer arrived.
 */
export function mtlsRequest(port: number, material: TlsMaterial, expected: SpiffeId, session?: Buffer): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ ...clientTlsOptions(material, expected), host: '127.0.0.1', port, session })
    let body = ''
    let serverId = ''
    let ticket: Buffer | undefined
    let reused = false
    let failure: Error | undefined
    const timer = setTimeout(() => socket.destroy(new Error('client timed out')), 3000)
    socket.on('session', (s: Buffer) => (ticket = s))
    socket.on('secureConnect', () => {
      serverId = String(socket.getPeerX509Certificate()?.subjectAltName ?? '').replace(/^URI:/, '')
      reused = socket.isSessionReused()
    })
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (body += chunk))
    socket.on('error', (err) => (failure = err))
    socket.on('close', () => {
      clearTimeout(timer)
      if (!failure && body !== '') resolve({ ok: true, serverId, body, reused, session: ticket })
      else resolve({ ok: false, error: failure, code: (failure as { code?: string } | undefined)?.code })
    })
  })
}

const GOOD_ID = 'spiffe://weft.local/ns/default/sa/checkout'

/** B6: leaves that must be refused as a client of a weft.local server, and why. */
export const MALFORMED_CLIENT_LEAVES: Array<{ name: string; forge: ForgeOptions; reason: RegExp }> = [
  { name: 'no URI SAN', forge: {}, reason: /0 URI SANs/ },
  { name: 'two URI SANs', forge: { uris: [GOOD_ID, 'spiffe://weft.local/ns/default/sa/admin'] }, reason: /2 URI SANs/ },
  { name: 'root-path ID spiffe://td', forge: { uris: ['spiffe://weft.local'] }, reason: /has no path/ },
  { name: 'uppercase trust domain', forge: { uris: ['spiffe://WEFT.local/ns/default/sa/checkout'] }, reason: /must be lowercase/ },
  { name: 'percent-encoded trust domain', forge: { uris: ['spiffe://weft%2elocal/ns/default/sa/checkout'] }, reason: /percent-encoding/ },
  { name: 'percent-encoded path', forge: { uris: ['spiffe://weft.local/ns/default/sa/%63heckout'] }, reason: /percent-encoding/ },
  { name: '.. segment', forge: { uris: ['spiffe://weft.local/ns/../sa/checkout'] }, reason: /"\.\." path segments/ },
  { name: 'query', forge: { uris: [`${GOOD_ID}?admin=1`] }, reason: /query/ },
  { name: 'fragment', forge: { uris: [`${GOOD_ID}#x`] }, reason: /fragment/ },
  { name: 'ID over 2048 bytes', forge: { uris: [`spiffe://weft.local/${'a'.repeat(2040)}`] }, reason: /longer than 2048 bytes/ },
  { name: 'not a spiffe URI', forge: { uris: ['https://weft.local/ns/default/sa/checkout'] }, reason: /scheme/ },
  { name: 'wrong trust domain', forge: { uris: ['spiffe://other.td/ns/default/sa/checkout'] }, reason: /in trust domain other\.td, not weft\.local/ },
  { name: 'leaf with cA=true', forge: { uris: [GOOD_ID], ca: true }, reason: /CA certificate \(basic constraints cA=true\)/ },
  { name: 'leaf with keyCertSign', forge: { uris: [GOOD_ID], keyUsage: KU.digitalSignature | KU.keyCertSign }, reason: /keyCertSign/ },
  { name: 'leaf with cRLSign', forge: { uris: [GOOD_ID], keyUsage: KU.digitalSignature | KU.cRLSign }, reason: /cRLSign/ },
  { name: 'no key usage', forge: { uris: [GOOD_ID], keyUsage: null }, reason: /no key usage/ },
  { name: 'key usage without digitalSignature', forge: { uris: [GOOD_ID], keyUsage: KU.keyAgreement }, reason: /lacks the digitalSignature/ },
  { name: 'EKU without clientAuth', forge: { uris: [GOOD_ID], eku: [EKU.serverAuth] }, reason: /does not include clientAuth/ },
  { name: 'no EKU', forge: { uris: [GOOD_ID], eku: null }, reason: /does not include clientAuth/ },
]
