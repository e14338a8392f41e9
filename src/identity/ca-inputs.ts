// What the CA is given, checked before it signs anything: a CSR from an instance (readable,
// P-256, self-signature verifies) and an operator's CA certificates (may sign, valid now, at most
// the trust-domain ID, chain links up).
import { WeftError } from '../errors/index.js'
import { isTrustDomainId, trySpiffeId, validTrustDomain } from './spiffe-id.js'
import { uriSansOf, x509 } from './x509.js'

/** A CSR the CA may sign: readable PKCS#10, ECDSA P-256, and signed by the key it carries (proof of possession). */
export async function readCsr(pem: string): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest
  try {
    csr = new x509.Pkcs10CertificateRequest(pem)
  } catch (err) {
    invalid(`the CSR is not a readable PKCS#10 request (${(err as Error).message})`, err)
  }
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string }
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') invalid(`the CSR key must be ECDSA P-256, got ${alg.name ?? '?'} ${alg.namedCurve ?? ''}`.trim())
  let verified = false
  try {
    verified = await csr.verify()
  } catch (err) {
    invalid(`the CSR signature could not be checked (${(err as Error).message})`, err)
  }
  if (!verified) invalid('the CSR signature does not verify: it was not signed by the key it carries')
  return csr
}

/** An X.509 certificate from PEM, or WEFT_ERR_INVALID_ARG naming where it came from. */
export function readCertificate(pem: string, where: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem)
  } catch (err) {
    invalid(`${where} is not a readable certificate (${(err as Error).message})`, err)
  }
}

/** A CA certificate must be allowed to sign certificates (M2 signing certificates). */
export function checkSigningCertificate(cert: x509.X509Certificate, where: string): void {
  const bc = cert.getExtension(x509.BasicConstraintsExtension)
  if (!bc?.ca) invalid(`${where} is not a CA certificate (basic constraints cA is not true)`)
  const ku = cert.getExtension(x509.KeyUsagesExtension)
  if (!ku || (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) invalid(`${where} has no keyCertSign key usage`)
  const now = Date.now()
  if (cert.notBefore.getTime() > now) invalid(`${where} is not valid before ${cert.notBefore.toISOString()}`)
  if (cert.notAfter.getTime() <= now) invalid(`${where} expired at ${cert.notAfter.toISOString()}`)
}

/** The trust domain from the CA's `spiffe://<td>` URI SAN (M2: no path), else the option. */
export function trustDomainOfCa(cert: x509.X509Certificate, option: string | undefined): string {
  const uris = uriSansOf(cert)
  if (uris.length > 1) invalid(`certPem has ${uris.length} URI SANs; a signing certificate carries at most its trust-domain ID`)
  if (uris.length === 0) {
    if (option === undefined) invalid('certPem has no spiffe:// URI SAN: give trustDomain')
    return validTrustDomain(option)
  }
  const id = trySpiffeId(uris[0]!)
  if (!id || !isTrustDomainId(id)) invalid(`certPem's URI SAN ${JSON.stringify(uris[0])} is not a trust-domain ID (spiffe://<td>, no path)`)
  if (option !== undefined && option !== id.trustDomain) invalid(`certPem is for trust domain ${id.trustDomain}, not ${option}`)
  return id.trustDomain
}

/** The AKI leaves carry: the CA's own SKI when it has one (operator CAs may compute it differently). */
export async function authorityKeyIdOf(cert: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)
  return ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : x509.AuthorityKeyIdentifierExtension.create(cert.publicKey)
}

/** Whether `issuer`'s key verifies `cert`'s signature (false, not a throw, on any failure). */
export async function signedBy(cert: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true })
  } catch {
    return false
  }
}

/** The DER as a map key: two PEM spellings of one certificate are the same certificate. */
export function derKey(cert: x509.X509Certificate): string {
  return Buffer.from(cert.rawData).toString('base64')
}

/** Throws WEFT_ERR_INVALID_ARG prefixed "certificate authority:". */
export function invalid(problem: string, cause?: unknown): never {
  throw new WeftError('WEFT_ERR_INVALID_ARG', `certificate authority: ${problem}`, { cause })
}
