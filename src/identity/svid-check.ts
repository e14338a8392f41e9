// The X509-SVID leaf rules (M1, M2, B6) applied to a peer's certificate after OpenSSL has checked
// its chain against the bundle: one SPIFFE ID URI SAN with a path, in our trust domain, not a CA,
// usable for the role it plays. Cached by fingerprint, because handshakes repeat the same peers.
import type { X509Certificate as NodeX509Certificate } from 'node:crypto'
import type { PeerCertificate } from 'node:tls'
import { isTrustDomainId, spiffeIdProblem, trySpiffeId, type SpiffeId } from './spiffe-id.js'
import { OID, fingerprintOf, uriSansOf, x509 } from './x509.js'

/** Which side of the connection the certificate's owner is on: it needs that EKU. */
export type SvidRole = 'client' | 'server'

export interface SvidCheckOptions {
  /** The only trust domain accepted (no federation: M3). */
  trustDomain: string
  /** `client`: EKU must include clientAuth; `server`: serverAuth. */
  role: SvidRole
}

export type SvidCheckResult = { readonly ok: true; readonly id: SpiffeId } | { readonly ok: false; readonly reason: string }

/** What the bytes of a certificate say, independent of who asks: safe to cache by fingerprint. */
type LeafFacts =
  | { readonly problem: string }
  | { readonly problem?: undefined; readonly id: SpiffeId; readonly serverAuth: boolean; readonly clientAuth: boolean }

/** Entries kept; the least recently used goes first. A mesh has far fewer distinct peers in flight. */
const CACHE_MAX_ENTRIES = 1024
const cache = new Map<string, LeafFacts>()

/**
 * Checks a peer's leaf certificate (node's `X509Certificate` or its DER) against the X509-SVID
 * rules. Chain validation, expiry and signatures are OpenSSL's job (node:tls with the bundle as
 * `ca`); this is what OpenSSL does not know about SPIFFE.
 * @example
 * const r = checkSvid(socket.getPeerX509Certificate()!, { trustDomain: 'weft.local', role: 'client' })
 * if (!r.ok) socket.destroy()
 */
export function checkSvid(cert: NodeX509Certificate | PeerCertificate | Uint8Array, options: SvidCheckOptions): SvidCheckResult {
  const facts = factsOf(cert)
  if (facts.problem !== undefined) return { ok: false, reason: facts.problem }
  if (facts.id.trustDomain !== options.trustDomain) {
    return { ok: false, reason: `${facts.id.toString()} is in trust domain ${facts.id.trustDomain}, not ${options.trustDomain}` }
  }
  if (options.role === 'client' && !facts.clientAuth) return { ok: false, reason: 'the extended key usage does not include clientAuth' }
  if (options.role === 'server' && !facts.serverAuth) return { ok: false, reason: 'the extended key usage does not include serverAuth' }
  return { ok: true, id: facts.id }
}

/**
 * The cache key: node's own SHA-256 fingerprint when the certificate comes from node (computed in
 * C++ with the object, or by X509Certificate's getter), a hash of the DER only for bare bytes.
 * Hashing in JS took ~40 µs of a new mTLS connection's client CPU (createHash; bench/tls-handshake.ts
 * profile, 2026-12-08). The two spellings differ ("AB:CD…" and "abcd…"), so one certificate seen
 * both ways takes two entries: harmless.
 */
function factsOf(cert: NodeX509Certificate | PeerCertificate | Uint8Array): LeafFacts {
  // Never a missing fingerprint as the key (an object built by hand): two certificates would share it.
  const native = cert instanceof Uint8Array ? undefined : cert.fingerprint256
  const key = typeof native === 'string' && native.length > 0 ? native : fingerprintOf(bytesOf(cert))
  const hit = cache.get(key)
  if (hit) {
    // Re-insert: Map keeps insertion order, so the first key is always the least recently used.
    cache.delete(key)
    cache.set(key, hit)
    return hit
  }
  const facts = readLeaf(bytesOf(cert))
  cache.set(key, facts)
  if (cache.size > CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value!)
  return facts
}

/** The certificate's DER (X509Certificate copies it out on each read of `raw`, so only on a miss). */
function bytesOf(cert: NodeX509Certificate | PeerCertificate | Uint8Array): Uint8Array {
  return cert instanceof Uint8Array ? cert : cert.raw
}

function readLeaf(der: Uint8Array): LeafFacts {
  let cert: x509.X509Certificate
  try {
    cert = new x509.X509Certificate(der)
    void cert.extensions // parses every extension now, so a malformed one is caught here
  } catch (err) {
    return { problem: `unreadable certificate (${(err as Error).message})` }
  }
  for (const oid of [OID.subjectAltName, OID.basicConstraints, OID.keyUsage, OID.extKeyUsage]) {
    if (cert.getExtensions(oid).length > 1) return { problem: `the certificate repeats extension ${oid}` }
  }

  let uris: string[]
  try {
    uris = uriSansOf(cert)
  } catch (err) {
    return { problem: `unreadable subject alternative names (${(err as Error).message})` }
  }
  if (uris.length !== 1) return { problem: `${uris.length} URI SANs: an X509-SVID has exactly one, its SPIFFE ID` }
  const uri = uris[0]!
  const id = trySpiffeId(uri)
  if (!id) return { problem: `the URI SAN is not a valid SPIFFE ID: ${spiffeIdProblem(uri)}` }
  if (isTrustDomainId(id)) return { problem: `${id.toString()} has no path: that is a signing certificate's ID, not a workload's` }

  if (cert.getExtension(x509.BasicConstraintsExtension)?.ca) return { problem: 'the leaf is a CA certificate (basic constraints cA=true)' }
  const ku = cert.getExtension(x509.KeyUsagesExtension)
  if (!ku) return { problem: 'the leaf has no key usage extension (digitalSignature is required)' }
  if (ku.usages & x509.KeyUsageFlags.keyCertSign) return { problem: 'the leaf has the keyCertSign key usage' }
  if (ku.usages & x509.KeyUsageFlags.cRLSign) return { problem: 'the leaf has the cRLSign key usage' }
  if (!(ku.usages & x509.KeyUsageFlags.digitalSignature)) return { problem: 'the leaf lacks the digitalSignature key usage' }

  // No EKU extension at all is refused too: every Weft SVID carries both, and failing closed here
  // costs nothing for certificates this mesh issued.
  const usages = cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? []
  return {
    id,
    serverAuth: usages.includes(x509.ExtendedKeyUsage.serverAuth),
    clientAuth: usages.includes(x509.ExtendedKeyUsage.clientAuth),
  }
}
