// The one module that loads @peculiar/x509 (after its Reflect polyfill, on node's WebCrypto), plus
// the small PEM/DER and extension readers the identity modules share.
import 'reflect-metadata'
import { createHash, webcrypto, X509Certificate as NodeX509Certificate } from 'node:crypto'
import * as x509 from '@peculiar/x509'

// @peculiar/x509 keeps one process-wide provider; node's WebCrypto is the only one Weft uses, so
// setting it here (once, on first import) cannot conflict with another copy's choice.
x509.cryptoProvider.set(webcrypto as unknown as ReturnType<typeof x509.cryptoProvider.get>)

export { x509 }

/** ECDSA P-256 with SHA-256: the one key and signature algorithm of every Weft certificate. */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const

/** Extension OIDs read by the checks. */
export const OID = {
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
} as const

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** Every PEM CERTIFICATE block in `text`, in order (a file may hold a chain). */
export function splitPemCertificates(text: string): string[] {
  return text.match(PEM_CERTIFICATE) ?? []
}

/** DER bytes of a certificate given as PEM, DER or an @peculiar/x509 certificate. */
export function derOf(cert: string | Uint8Array | x509.X509Certificate): Buffer {
  if (cert instanceof x509.X509Certificate) return Buffer.from(cert.rawData)
  if (typeof cert === 'string') return Buffer.from(x509.PemConverter.decodeFirst(cert))
  return Buffer.from(cert.buffer, cert.byteOffset, cert.byteLength)
}

/** SHA-256 of the DER: the key certificates are cached and compared by. */
export function fingerprintOf(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex')
}

/** The URI entries of the certificate's (or CSR's) subject alternative names, in order. */
export function uriSansOf(holder: { getExtension(type: string): x509.Extension | null }): string[] {
  const ext = holder.getExtension(OID.subjectAltName)
  if (!ext) return []
  const san = ext instanceof x509.SubjectAlternativeNameExtension ? ext : new x509.SubjectAlternativeNameExtension(ext.rawData)
  return san.names.items.filter((n) => n.type === 'url').map((n) => n.value)
}

/**
 * The one PEM spelling of a certificate everywhere in Weft (node's: 64-column lines, final newline),
 * so that PEM strings from the CA, the bundle and operator files compare equal.
 */
export function pemOf(cert: string | Uint8Array | x509.X509Certificate): string {
  return new NodeX509Certificate(derOf(cert)).toString()
}
