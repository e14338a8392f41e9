// X509-SVIDs for the processes of the mTLS benches that are not meshes (the upstream, the raw
// client arms): signed by the bench daemon's own CA, read from <dataDir>/ca/ca.json, exactly as
// the daemon signs a mesh's; and the TLS settings a Weft mesh uses with them (tls-material.ts).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { constants } from 'node:crypto'
import type { PeerCertificate, SecureContextOptions } from 'node:tls'
import { CertificateAuthority, type CaPem } from '../../src/identity/ca.js'
import { createCsr, generateKeyPair } from '../../src/identity/keys.js'
import { workloadId } from '../../src/identity/spiffe-id.js'

export interface Svid {
  /** spiffe://<td>/ns/<namespace>/sa/<service> */
  id: string
  trustDomain: string
  /** The leaf first, then intermediates. */
  certChainPem: string[]
  keyPem: string
  /** The trust bundle's roots. */
  roots: string[]
}

/** What the daemon keeps in <dataDir>/ca/ca.json (the parts used here). */
interface CaFile {
  active: CaPem
  bundle: { trustDomain: string; roots: string[] }
}

/** A new key and an SVID for `service` from the daemon's CA (the daemon must have started once on `dataDir`). */
export async function issueSvid(dataDir: string, service: string, namespace = 'default'): Promise<Svid> {
  const state = JSON.parse(readFileSync(join(dataDir, 'ca', 'ca.json'), 'utf8')) as CaFile
  const ca = await CertificateAuthority.fromPem(state.active)
  const id = workloadId(ca.trustDomain, namespace, service)
  const keys = await generateKeyPair()
  const signed = await ca.sign(await createCsr(keys, id), { id })
  return { id: id.toString(), trustDomain: ca.trustDomain, certChainPem: signed.certChainPem, keyPem: keys.privateKeyPem, roots: [...state.bundle.roots] }
}

/**
 * The secure-context options Weft builds from an SVID (src/identity/tls-material.ts
 * `secureContextOptions`): chain, key, the bundle as `ca`, TLS ≥ 1.2, and with `noTickets` (Weft's
 * setting) SSL_OP_NO_TICKET. On a client context that flag does not stop TLS 1.3 resumption (the
 * server decides whether it issues tickets; tls-handshake.ts shows it); Weft's connector never
 * offers a session (undici `maxCachedSessions: 0`).
 */
export function contextOptions(s: Svid, noTickets = true): SecureContextOptions {
  return {
    cert: s.certChainPem.join('\n'),
    key: s.keyPem,
    ca: [...s.roots],
    minVersion: 'TLSv1.2',
    ...(noTickets ? { secureOptions: constants.SSL_OP_NO_TICKET } : {}),
  }
}

/**
 * A `checkServerIdentity` for SPIFFE certificates: the hostname check does not apply (an SVID has
 * no DNS SAN); the server's URI SAN must be `expected`. node calls it after OpenSSL verified the
 * chain against `ca`, and skips it on a resumed session.
 */
export function spiffeServerCheck(expected: string): (host: string, cert: PeerCertificate) => Error | undefined {
  const want = `URI:${expected}`
  return (_host, cert) => (cert.subjectaltname === want ? undefined : new Error(`the server is ${cert.subjectaltname ?? '(no SAN)'}, expected ${expected}`))
}
