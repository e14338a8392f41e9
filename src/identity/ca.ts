// The certificate authority library: a self-signed root made for a trust domain, or an operator's
// root or intermediate loaded from PEM, signing X509-SVID leaves from CSRs (identity-plan, M1/M2/M6).
// Pure: it writes no files; the daemon persists `toPem()`.
import { webcrypto } from 'node:crypto'
import { WeftError } from '../errors/index.js'
import { newBundle, type TrustBundle } from './bundle.js'
import { generateKeyPair, importPrivateKeyPem, type KeyPairPem } from './keys.js'
import { authorityKeyIdOf, checkSigningCertificate, derKey, invalid, readCertificate, readCsr, signedBy, trustDomainOfCa } from './ca-inputs.js'
import { isTrustDomainId, parseSpiffeId, sameSpiffeId, trustDomainId, trySpiffeId, validTrustDomain, workloadOf, type SpiffeId } from './spiffe-id.js'
import { EC_P256, pemOf, splitPemCertificates, uriSansOf, x509 } from './x509.js'

const HOUR_MS = 3_600_000
const DEFAULT_ROOT_TTL_MS = 10 * 365 * 24 * HOUR_MS
const DEFAULT_SVID_TTL_MS = 24 * HOUR_MS
const DEFAULT_BACKDATE_MS = 5 * 60_000

/** What `sign` returns. Times are epoch ms, as written in the certificate (whole seconds). */
export interface SignedCertificate {
  /** The leaf first, then the intermediates up to (not including) the root; empty of roots. */
  readonly certChainPem: string[]
  readonly notBefore: number
  readonly notAfter: number
  /** The leaf's serial number, lower-case hex. */
  readonly serial: string
}

export interface SignOptions {
  /** The identity to certify: the authenticated caller's, never taken from the CSR. */
  id: SpiffeId
  /** Lifetime from now. Default 24 h; cut to the CA's own expiry. */
  ttlMs?: number
  /** notBefore is this far in the past, for clock skew between peers (M6). Default 5 min. */
  backdateMs?: number
}

/** The CA as PEM, for the daemon to persist (the key as PKCS#8: store it 0600). */
export interface CaPem {
  readonly trustDomain: string
  readonly certPem: string
  readonly keyPem: string
  /** Intermediates above `certPem`, sent with every leaf; empty for a root CA. */
  readonly chainPem: string[]
  /** The roots of the trust bundle: `[certPem]` for a root CA. */
  readonly bundleRoots: string[]
}

export interface RootOptions {
  trustDomain: string
  /** Default 10 years. */
  ttlMs?: number
}

export interface FromPemOptions {
  /** The CA certificate; further PEM blocks in the same text are taken as its chain. */
  certPem: string
  /** Its P-256 private key (PKCS#8 or SEC1 PEM). */
  keyPem: string
  /** Intermediates above `certPem` up to the root (a root given here is dropped: it is in the bundle). */
  chainPem?: string | string[]
  /** Roots for the trust bundle. Required for an intermediate; a root CA defaults to itself. */
  bundleRoots?: string | string[]
  /** Required when the certificate has no `spiffe://<td>` URI SAN; must match it when it has one. */
  trustDomain?: string
}

export class CertificateAuthority {
  private constructor(
    /** The trust domain every certificate this CA signs belongs to. */
    readonly trustDomain: string,
    private readonly cert: x509.X509Certificate,
    private readonly keys: KeyPairPem,
    /** What follows the leaf in every chain: nothing for a root CA, else this intermediate and its issuers. */
    private readonly chainSent: readonly x509.X509Certificate[],
    /** The trust bundle's roots (canonical PEM). */
    readonly bundleRoots: readonly string[],
    private readonly authorityKeyId: x509.AuthorityKeyIdentifierExtension,
    /** Epoch ms after which this CA signs nothing: the earliest expiry on its path to the root. */
    readonly notAfter: number,
  ) {}

  /**
   * A new self-signed root for `trustDomain`: P-256, `cA=true` and keyCertSign+cRLSign (both
   * critical), URI SAN `spiffe://<td>`.
   * @param options.ttlMs default 10 years.
   * @example const ca = await CertificateAuthority.createRoot({ trustDomain: 'weft.local' })
   */
  static async createRoot(options: RootOptions): Promise<CertificateAuthority> {
    const trustDomain = validTrustDomain(options.trustDomain)
    const ttlMs = positiveMs('ttlMs', options.ttlMs ?? DEFAULT_ROOT_TTL_MS)
    const keys = await generateKeyPair()
    const serial = randomSerial()
    const now = Date.now()
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial,
      // The serial in the subject keeps two roots of one trust domain apart during a rotation,
      // so a verifier never confuses their names (SPIRE does the same).
      name: [{ O: ['weft'] }, { CN: [`weft root CA ${trustDomain}`] }, { '2.5.4.5': [serial] }],
      notBefore: new Date(now - DEFAULT_BACKDATE_MS),
      notAfter: new Date(now + ttlMs),
      signingAlgorithm: EC_P256,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(trustDomain).toString() }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    })
    return new CertificateAuthority(trustDomain, cert, keys, [], [pemOf(cert)], await authorityKeyIdOf(cert), cert.notAfter.getTime())
  }

  /**
   * An operator-supplied CA (`weft daemon --ca-cert --ca-key [--ca-bundle]`): a root, or an
   * intermediate whose chain is sent with every leaf and whose roots form the bundle. Checks that
   * the key matches, the certificate may sign (cA=true, keyCertSign), is valid now, carries at most
   * the trust-domain ID, and that the chain links up to one of the roots.
   * @throws WeftError WEFT_ERR_INVALID_ARG saying which check failed.
   */
  static async fromPem(options: FromPemOptions): Promise<CertificateAuthority> {
    const [first, ...rest] = splitPemCertificates(options.certPem ?? '')
    if (!first) invalid('certPem holds no PEM certificate')
    const cert = readCertificate(first, 'certPem')
    const keys = await importPrivateKeyPem(options.keyPem)
    const keySpki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey))
    if (!keySpki.equals(Buffer.from(cert.publicKey.rawData))) invalid('keyPem is not the private key of certPem')
    checkSigningCertificate(cert, 'certPem')
    const trustDomain = trustDomainOfCa(cert, options.trustDomain)

    const roots = [options.bundleRoots ?? []].flat().flatMap(splitPemCertificates).map((p, i) => readCertificate(p, `bundleRoots[${i}]`))
    const rootFingerprints = new Set(roots.map((r) => derKey(r)))
    const chain = [...rest, ...[options.chainPem ?? []].flat().flatMap(splitPemCertificates)]
      .map((p, i) => readCertificate(p, `chainPem[${i}]`))
      .filter((c) => !rootFingerprints.has(derKey(c)))
    chain.forEach((c, i) => checkSigningCertificate(c, `chainPem[${i}]`))

    const aki = await authorityKeyIdOf(cert)
    if (await cert.isSelfSigned()) {
      if (chain.length > 0) invalid('certPem is a self-signed root: it takes no chainPem')
      if (roots.length === 0) roots.push(cert)
      else if (!rootFingerprints.has(derKey(cert))) invalid('certPem is a self-signed root but is not in bundleRoots')
      return new CertificateAuthority(trustDomain, cert, keys, [], roots.map(pemOf), aki, cert.notAfter.getTime())
    }
    if (roots.length === 0) invalid('certPem is an intermediate: bundleRoots must give the root(s) it chains to')
    const path = [cert, ...chain]
    for (let i = 0; i + 1 < path.length; i++) {
      if (!(await signedBy(path[i]!, path[i + 1]!))) invalid(`the chain does not link: ${i === 0 ? 'certPem' : `chainPem[${i - 1}]`} is not signed by chainPem[${i}]`)
    }
    let anchor: x509.X509Certificate | undefined
    for (const root of roots) if (!anchor && (await signedBy(path[path.length - 1]!, root))) anchor = root
    if (!anchor) invalid('the chain does not end at any of bundleRoots')
    const notAfter = Math.min(...[...path, anchor].map((c) => c.notAfter.getTime()))
    return new CertificateAuthority(trustDomain, cert, keys, path, roots.map(pemOf), aki, notAfter)
  }

  /** The trust bundle of this CA's roots. @param sequence default 1. */
  bundle(sequence = 1): TrustBundle {
    return newBundle(this.trustDomain, this.bundleRoots, sequence)
  }

  /**
   * Signs an X509-SVID for `options.id` from a PKCS#10 CSR: its self-signature must verify and its
   * URI SAN, when it has one, must be `id` (the identity comes from the caller). Only the CSR's
   * public key is used; its subject and other SANs are ignored. The leaf: exactly one URI SAN,
   * `cA=false` critical, key usage digitalSignature+keyAgreement critical, EKU serverAuth+clientAuth,
   * 128-bit random serial, notBefore backdated.
   * @param options.ttlMs default 24 h. @param options.backdateMs default 5 min.
   * @throws WeftError WEFT_ERR_FORBIDDEN when the CSR asks for another identity (both are named);
   *   WEFT_ERR_INVALID_ARG for an unreadable CSR, a bad signature, a non-P-256 key, or an `id`
   *   outside this trust domain or without a path.
   */
  async sign(csrPem: string, options: SignOptions): Promise<SignedCertificate> {
    const id = this.checkedId(options.id)
    const ttlMs = positiveMs('ttlMs', options.ttlMs ?? DEFAULT_SVID_TTL_MS)
    const backdateMs = options.backdateMs ?? DEFAULT_BACKDATE_MS
    if (!Number.isFinite(backdateMs) || backdateMs < 0) invalid(`backdateMs must be a non-negative number of ms, got ${String(backdateMs)}`)
    const csr = await readCsr(csrPem)
    for (const uri of uriSansOf(csr)) {
      const requested = trySpiffeId(uri)
      if (!requested || !sameSpiffeId(requested, id)) {
        throw new WeftError('WEFT_ERR_FORBIDDEN', `the CSR asks for ${JSON.stringify(uri.slice(0, 512))} but the caller is ${id.toString()}`, { details: { requested: uri.slice(0, 512), expected: id.toString() } })
      }
    }

    const now = Date.now()
    const notAfter = Math.min(now + ttlMs, this.notAfter)
    if (notAfter <= now) invalid(`the CA certificate expired at ${new Date(this.notAfter).toISOString()}`)
    const service = workloadOf(id)?.service
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      // CN is informational only; with no subject the SAN must be critical (RFC 5280 §4.2.1.6).
      subject: service ? [{ CN: [service] }] : undefined,
      issuer: this.cert.subjectName,
      notBefore: new Date(now - backdateMs),
      notAfter: new Date(notAfter),
      publicKey: csr.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: EC_P256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        // keyAgreement as well as digitalSignature: static-ECDH suites need it (identity-plan).
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id.toString() }], service === undefined),
        await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
        this.authorityKeyId,
      ],
    })
    return {
      certChainPem: [pemOf(leaf), ...this.chainSent.map(pemOf)],
      notBefore: leaf.notBefore.getTime(),
      notAfter: leaf.notAfter.getTime(),
      serial: leaf.serialNumber.toLowerCase(),
    }
  }

  /** The CA as PEM, for the daemon to persist and reload with `fromPem`. */
  toPem(): CaPem {
    return {
      trustDomain: this.trustDomain,
      certPem: pemOf(this.cert),
      keyPem: this.keys.privateKeyPem,
      chainPem: this.chainSent.slice(1).map(pemOf),
      bundleRoots: [...this.bundleRoots],
    }
  }

  /** Re-parses `id` (it may be a hand-made object) and checks it belongs under this CA. */
  private checkedId(id: SpiffeId): SpiffeId {
    const parsed = parseSpiffeId(String(id))
    if (parsed.trustDomain !== this.trustDomain) invalid(`${parsed.toString()} is not in this CA's trust domain ${this.trustDomain}`)
    if (isTrustDomainId(parsed)) invalid(`${parsed.toString()} has no path: a workload certificate needs one`)
    return parsed
  }
}

/** 128 random bits (M2); @peculiar/x509 encodes them as a minimal positive INTEGER. */
function randomSerial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex')
}

function positiveMs(option: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) invalid(`${option} must be a positive number of ms, got ${String(value)}`)
  return value
}
