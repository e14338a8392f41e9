// What an open mTLS connection's trust rests on, read once after its handshake (RELIABILITY M7,
// M8, F11, F13): when the peer's verified chain stops being valid, and whether that chain still
// verifies against a later trust bundle. OpenSSL checks a chain only at the handshake; the data
// plane uses this to end connections that outlive their peer's certificate or its root.
// node:crypto only (no @peculiar/x509): the TLS front door and the connection pools load it always.
import { X509Certificate } from 'node:crypto'
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls'

export interface PeerChain {
  /** Epoch ms: the earliest notAfter of the chain as verified (leaf, intermediates, root). */
  readonly notAfter: number
  /** DER of the highest certificate that is not self-issued: the one a trusted root must have signed. */
  readonly top: Buffer
  /** Its SHA-256 fingerprint (node's spelling), the key the verdicts are cached by. */
  readonly topFingerprint: string
}

/** Verdicts kept per set of roots; a mesh has far fewer distinct issuing certificates. */
const VERDICTS_MAX = 4096

interface RootSet {
  readonly certs: readonly X509Certificate[]
  readonly verdicts: Map<string, boolean>
}

/** Parsed roots per roots list (the bundle's frozen array, or a context's `ca` option). */
const rootSets = new WeakMap<object, RootSet>()

/**
 * The chain of a verified peer certificate as node hands it over (`socket.getPeerCertificate(true)`,
 * or the certificate `checkServerIdentity` receives): undefined when there is none.
 * @example const chain = peerChainOf(tlsSocket.getPeerCertificate(true))
 */
export function peerChainOf(cert: DetailedPeerCertificate | PeerCertificate | undefined): PeerChain | undefined {
  let c = cert as DetailedPeerCertificate | undefined
  if (!c?.raw) return undefined
  let notAfter = Infinity
  let top = c
  // Node links each certificate to its issuer; a self-signed root points to itself.
  for (let depth = 0; c?.raw && depth < 16; depth++) {
    const t = Date.parse(c.valid_to)
    notAfter = Math.min(notAfter, Number.isNaN(t) ? 0 : t)
    const issuer: DetailedPeerCertificate | undefined = c.issuerCertificate
    if (issuer === c || issuer?.fingerprint256 === c.fingerprint256) break
    top = c
    c = issuer
  }
  return { notAfter, top: top.raw, topFingerprint: top.fingerprint256 }
}

/**
 * The same from the peer's leaf as an X509Certificate (`socket.getPeerX509Certificate()`), whose
 * `issuerCertificate` links the verified chain: about 1 µs a connection, where
 * `getPeerCertificate(true)` builds a legacy object per certificate (tens to hundreds of µs, the
 * larger part of a new mTLS connection's extra cost in bench/tls-handshake.ts).
 */
export function peerChainOfX509(leaf: X509Certificate | undefined): PeerChain | undefined {
  let c = leaf
  if (!c) return undefined
  let notAfter = Infinity
  let top = c
  for (let depth = 0; c && depth < 16; depth++) {
    const t = Date.parse(c.validTo)
    notAfter = Math.min(notAfter, Number.isNaN(t) ? 0 : t)
    const issuer: X509Certificate | undefined = c.issuerCertificate
    // A self-signed root is not the top; a certificate whose issuer is not linked is.
    if (issuer?.fingerprint256 === c.fingerprint256) break
    top = c
    c = issuer
  }
  return { notAfter, top: top.raw, topFingerprint: top.fingerprint256 }
}

/**
 * Whether `chain` still verifies against `roots` (PEM strings or buffers; the trust bundle's
 * `roots` or a secure context's `ca`): some root issued and signed its top certificate. Verdicts
 * are cached per roots object, so a bundle change costs one signature check per distinct issuer.
 */
export function chainTrusted(chain: PeerChain, roots: readonly (string | Buffer)[]): boolean {
  let set = rootSets.get(roots)
  if (!set) {
    const certs: X509Certificate[] = []
    for (const r of roots) {
      try {
        certs.push(new X509Certificate(r))
      } catch {
        // not a certificate: it trusts nothing
      }
    }
    set = { certs, verdicts: new Map() }
    rootSets.set(roots, set)
  }
  let verdict = set.verdicts.get(chain.topFingerprint)
  if (verdict === undefined) {
    verdict = issuedByAny(chain.top, set.certs)
    if (set.verdicts.size >= VERDICTS_MAX) set.verdicts.clear()
    set.verdicts.set(chain.topFingerprint, verdict)
  }
  return verdict
}

function issuedByAny(der: Buffer, roots: readonly X509Certificate[]): boolean {
  let top: X509Certificate
  try {
    top = new X509Certificate(der)
  } catch {
    return false
  }
  const now = Date.now()
  return roots.some((r) => {
    if (top.fingerprint256 === r.fingerprint256) return true
    if (!top.checkIssued(r) || Date.parse(r.validTo) <= now) return false
    try {
      return top.verify(r.publicKey)
    } catch {
      return false
    }
  })
}

/** A `ca` option (string, buffer or a list of them) as a list; undefined when there is none. */
export function rootsOf(ca: string | Buffer | readonly (string | Buffer)[] | undefined): readonly (string | Buffer)[] | undefined {
  if (ca === undefined) return undefined
  return Array.isArray(ca) ? (ca as readonly (string | Buffer)[]) : [ca as string | Buffer]
}

/**
 * The wait until `notAfter` for a connection's expiry timer, rounded up to a whole second: Node
 * keeps one timer list per distinct duration, so per-connection timers of unique millisecond
 * waits each made a list (measured in bench/tls-handshake.ts); rounded, connections made in the
 * same second share one. A connection then ends up to a second after its certificate.
 */
export function expiryWait(notAfter: number, now = Date.now()): number {
  return Math.min(Math.ceil((notAfter - now + 1) / 1000) * 1000, 2 ** 31 - 1)
}
