// The mesh's use of its identity: which mTLS mode applies (to this instance's servers and to each
// destination), the server side of the TLS front door, and the client TLS options for a connection
// to a mesh endpoint. Reads the current snapshot's policy per connection, never per request; TLS
// objects are built once per certificate (or bundle) and reused.
import { X509Certificate } from 'node:crypto'
import type { ConnectionOptions, SecureContextOptions, TLSSocket } from 'node:tls'
import { DAEMON_NAMESPACE, DAEMON_SERVICE, type SvidResponse } from './control/protocol.js'
import type { MeshPolicy, MtlsMode, ServiceSettings } from './config/types.js'
import type { Endpoint } from './discovery/endpoint.js'
import { WeftError } from './errors/index.js'
import type { FrontDoorRefusal, FrontDoorSecurity } from './http/tls-front-door.js'
import type { ConnectPlan } from './http/endpoint-pool.js'
import { mtlsModeFor } from './identity/mtls-mode.js'
import type { PeerIdentity } from './identity/peer.js'
import type { IdentityMaterial, IdentityProvider, SignedSvid } from './identity/provider.js'
import { parseBundle, type TrustBundle } from './identity/bundle.js'
import { workloadId, workloadOf, type SpiffeId } from './identity/spiffe-id.js'
import type { RevocationList } from './identity/revocation.js'
import { RevocationState } from './identity/revocation-state.js'
import type * as TlsMaterialModule from './identity/tls-material.js'
import type * as ProviderModule from './identity/provider.js'
import type * as SvidCheckModule from './identity/svid-check.js'
import type { PeerCertificate } from 'node:tls'
import type { Logger } from './util/logger.js'
import { throttledLog } from './util/log-throttle.js'

/**
 * The certificate code is loaded only under a daemon: @peculiar/x509 needs the reflect-metadata
 * polyfill installed process-wide, and a mesh without a CA must not change the process's globals.
 */
interface IdentityLib {
  tls: typeof TlsMaterialModule
  provider: typeof ProviderModule
  svid: typeof SvidCheckModule
}

export interface MeshIdentityDeps {
  service: string
  namespace: string
  policy: () => MeshPolicy | undefined
  /** Under a control daemon (the CA): mTLS applies, and fails closed until the first SVID. */
  controlled: boolean
  logger: Logger
  /** Seconds until this instance's certificate expires (weft_certificate_expiry_seconds), per update. */
  onCertificate?: (notAfterMs: number | undefined) => void
  /** The earliest expiry among the CA certificates the instance relies on (its SVID's issuers, the bundle's roots), per update. */
  onCaExpiry?: (notAfterMs: number | undefined) => void
  /** A refused inbound connection (plaintext in STRICT, bad certificate…), for metrics. */
  onRefused?: (reason: FrontDoorRefusal) => void
}

/** The control client's signing calls (POST /v1/instances/:id/svid and /jwt-svid). */
export interface DaemonSigner {
  signSvid(csrPem: string): Promise<SvidResponse>
  jwtSvid(audience: string): Promise<{ token: string; expiresAt: number }>
}

/** Asks the daemon for a JWT-SVID. */
export type JwtSvidSource = (audience: string) => Promise<{ token: string; expiresAt: number }>

export class MeshIdentity {
  private lib: IdentityLib | undefined
  private provider: IdentityProvider | undefined
  private firstCert: Promise<unknown> | undefined
  private readonly listeners = new Set<(m: IdentityMaterial | undefined) => void>()
  /** Told when the bundle's roots change (open connections are re-checked against them). */
  private readonly trustListeners = new Set<() => void>()
  /**
   * The SPIFFE ID each destination's servers must present, per compiled Service (one object per
   * config version): made and validated once, not on every new connection, whose code runs cold.
   */
  private readonly expectedIds = new WeakMap<ServiceSettings, SpiffeId>()
  private readonly policyListeners = new Set<() => void>()
  /** The revoked identities in force (RELIABILITY M8). */
  private readonly revoked: RevocationState
  private roots: readonly string[] | undefined
  private jwtSource: JwtSvidSource | undefined
  private readonly jwts = new Map<string, Promise<{ token: string; expiresAt: number }>>()
  private readonly refusalLog = throttledLog((line) => this.d.logger.warn(line), 10_000)

  constructor(private readonly d: MeshIdentityDeps) {
    this.revoked = new RevocationState(d.policy, d.controlled, d.logger, d.service)
  }

  /** Loads the certificate code (control mode, before the first bundle can arrive). */
  async load(): Promise<void> {
    if (!this.d.controlled || this.lib) return
    const [tls, provider, svid] = await Promise.all([import('./identity/tls-material.js'), import('./identity/provider.js'), import('./identity/svid-check.js')])
    this.lib = { tls, provider, svid }
  }

  /** True when this instance takes part in mTLS (it has a CA to ask: a control daemon). */
  get enabled(): boolean {
    return this.d.controlled
  }

  /** The SPIFFE ID of this instance, once the daemon's bundle told the trust domain. */
  get id(): string | undefined {
    return this.provider?.id
  }

  /** The certificate in use, if any. */
  current(): IdentityMaterial | undefined {
    return this.provider?.current()
  }

  /**
   * The daemon's trust bundle arrived (first on every watch stream, again on rotation). The first
   * one names the trust domain, so the provider can ask for this instance's SVID.
   */
  onBundle(raw: unknown, sign: (csrPem: string) => Promise<SignedSvid>, jwt?: JwtSvidSource): void {
    if (jwt) this.jwtSource = jwt
    let bundle: TrustBundle
    try {
      bundle = parseBundle(raw)
    } catch (err) {
      this.d.logger.error(`identity: ignored a trust bundle from the daemon: ${(err as Error).message}`)
      return
    }
    if (this.provider) {
      this.provider.updateBundle(bundle)
      return
    }
    if (!this.lib) {
      this.d.logger.error('identity: a trust bundle arrived before the certificate code was loaded; ignored')
      return
    }
    const id = workloadId(bundle.trustDomain, this.d.namespace, this.d.service).toString()
    const p = new this.lib.provider.IdentityProvider({ id, source: { sign }, logger: this.d.logger })
    p.on('update', (m: IdentityMaterial | undefined) => {
      this.d.onCertificate?.(m?.notAfter)
      this.d.onCaExpiry?.(m ? caNotAfter(m) : undefined)
      for (const l of this.listeners) l(m)
      // A renewal keeps the bundle; a rotation or a retirement changes its roots.
      if (!m || m.bundle.roots === this.roots) return
      const changed = this.roots !== undefined && !sameRoots(this.roots, m.bundle.roots)
      this.roots = m.bundle.roots
      if (changed) for (const l of this.trustListeners) l()
    })
    this.provider = p
    this.firstCert = p.start()
  }

  /**
   * The bundle from the control daemon's stream, with the daemon as the signer of this instance's
   * SVIDs and JWT-SVIDs. A certificate answer's bundle is checked like a pushed one: a malformed
   * answer fails that signing (retried), not a later use.
   */
  onDaemonBundle(raw: unknown, daemon: DaemonSigner): void {
    this.onBundle(raw, async (csr) => {
      const r = await daemon.signSvid(csr)
      return { certChainPem: r.certChain, bundle: parseBundle(r.bundle), notBefore: Date.parse(r.notBefore), notAfter: Date.parse(r.notAfter) }
    }, (audience) => daemon.jwtSvid(audience))
  }

  /**
   * A JWT-SVID of this instance for `audience`, signed by the daemon (ES256, 5 min), kept and
   * reused until 30 s before it expires. Send it as `authorization: Bearer <token>` to a service
   * whose RequestAuthentication names issuer `spiffe://<trust domain>` and the daemon's JWKS.
   * @example const token = await mesh.identity.jwtSvid('payments')
   */
  async jwtSvid(audience: string): Promise<string> {
    if (!this.jwtSource) throw new WeftError('WEFT_ERR_UNAUTHENTICATED', 'JWT-SVIDs come from the control daemon: this mesh has none (or has not reached it yet)')
    const held = this.jwts.get(audience)
    if (held) {
      const t = await held.catch(() => undefined)
      if (t && t.expiresAt - Date.now() > 30_000) return t.token
    }
    const next = this.jwtSource(audience)
    this.jwts.set(audience, next)
    if (this.jwts.size > 256) this.jwts.delete(this.jwts.keys().next().value!)
    return (await next).token
  }

  /** Tells `listener` every new certificate or bundle (gRPC's certificate providers). */
  onUpdate(listener: (m: IdentityMaterial | undefined) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * Tells `listener` when the trust bundle's roots change (a root added or retired), after the
   * new material is current: open connections are then re-checked against `current().bundle`.
   */
  /** `listener` is called whenever a new policy is in use (policyApplied); returns the unsubscribe. */
  onPolicyApplied(listener: () => void): () => void {
    this.policyListeners.add(listener)
    return () => this.policyListeners.delete(listener)
  }

  /**
   * The mesh swapped in a new policy: the mTLS modes may have changed (front doors end plaintext
   * connections a STRICT mode no longer allows), and so may the revoked identities (connections of
   * a newly revoked one are ended: RELIABILITY M8).
   */
  policyApplied(): void {
    for (const l of this.policyListeners) l()
    // This instance's own identity lifted: the daemon signs again; ask now rather than at the next
    // backed-off retry (a fresh key too, as the revoked one may have leaked).
    this.revoked.applied(this.provider?.id, () => void this.provider?.renew())
  }

  /** `listener` is called when the revoked identities change (some revoked, or lifted); returns the unsubscribe. */
  onRevocationChange(listener: () => void): () => void {
    return this.revoked.onChange(listener)
  }

  /** The revocations of the policy in use (an empty list without a daemon: no mTLS to refuse). */
  revocations(): RevocationList {
    return this.revoked.current()
  }

  /** Why a connection with peer `spiffeId` must not be (made or kept); undefined when it may. */
  revokedPeer(spiffeId: string | undefined): string | undefined {
    return this.revoked.peer(spiffeId)
  }

  /** The refusal of an outbound mTLS connection to `service` when this instance or the destination is revoked (revocation-state.ts). */
  outboundRevocation(service: ServiceSettings, trustDomain = this.trustDomain()): WeftError | undefined {
    return this.revoked.outbound(service, trustDomain, this.provider?.id)
  }

  onTrustChange(listener: () => void): () => void {
    this.trustListeners.add(listener)
    return () => this.trustListeners.delete(listener)
  }

  /** A peer's leaf as grpc-js hands it over (its chain already verified against the bundle). */
  peerFromCertificate(cert: PeerCertificate | undefined): PeerIdentity | string {
    if (!this.lib) return 'no certificate code loaded'
    if (!cert?.raw) return 'the client sent no certificate'
    const r = this.lib.svid.checkSvid(cert, { trustDomain: this.trustDomain(), role: 'client' })
    if (!r.ok) return `client certificate refused: ${r.reason}`
    const revoked = this.revokedPeer(r.id.toString())
    if (revoked) return `client certificate refused: ${revoked}`
    const w = workloadOf(r.id)
    return { id: r.id.toString(), trustDomain: r.id.trustDomain, namespace: w?.namespace, service: w?.service }
  }

  /** Why the client of an open connection (its leaf as node gives it) may no longer connect: its identity is revoked. */
  revokedCertificate(cert: PeerCertificate): string | undefined {
    if (!this.lib || !cert.raw || this.revocations().size === 0) return undefined
    const r = this.lib.svid.checkSvid(cert, { trustDomain: this.trustDomain(), role: 'client' })
    return r.ok ? this.revokedPeer(r.id.toString()) : undefined
  }

  /**
   * The check a gRPC client runs on `service`'s server certificate: its SVID must be the
   * destination's expected SPIFFE ID (the hostname is never looked at).
   */
  serverCheck(service: ServiceSettings): (host: string, cert: PeerCertificate) => Error | undefined {
    return (host, cert) => {
      const m = this.provider?.current()
      if (!m || !this.lib) return new WeftError('WEFT_ERR_UNAUTHENTICATED', `${service.name}: this instance has no certificate`)
      const revoked = this.outboundRevocation(service, m.bundle.trustDomain)
      if (revoked) return revoked
      const check = this.lib.tls.clientTlsOptions(m, this.expectedId(service, m.bundle.trustDomain)).checkServerIdentity!
      return check(host, cert)
    }
  }

  /** Waits (at most `timeoutMs`) for the first certificate; true when there is one. */
  async ready(timeoutMs: number): Promise<boolean> {
    if (!this.firstCert) return false
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.firstCert, new Promise((r) => (timer = setTimeout(r, timeoutMs)))])
    clearTimeout(timer)
    return this.provider?.current() !== undefined
  }

  close(): void {
    this.provider?.close()
  }

  /** The mode for one service; DISABLE when this instance has no identity source. */
  modeFor(service: string, namespace: string): MtlsMode {
    const policy = this.d.policy()
    if (!this.d.controlled || !policy) return 'DISABLE'
    return mtlsModeFor(policy, service, namespace)
  }

  /** The trust domain in use: the bundle's (the CA's) once there is a certificate, else the policy's. */
  trustDomain(): string {
    return this.provider?.current()?.bundle.trustDomain ?? this.d.policy()?.mesh.trustDomain ?? 'weft.local'
  }

  /** The mode of this instance's own servers. */
  serverMode(): MtlsMode {
    return this.modeFor(this.d.service, this.d.namespace)
  }

  /** The server's TLS context options (one frozen object per certificate or bundle). */
  contextOptions(): SecureContextOptions | undefined {
    const m = this.provider?.current()
    return m && this.lib ? this.lib.tls.secureContextOptions(m) : undefined
  }

  /** The FrontDoorSecurity for this instance's HTTP servers. */
  readonly frontDoor: FrontDoorSecurity = {
    mode: () => this.serverMode(),
    contextOptions: () => this.contextOptions(),
    verifyPeer: (socket: TLSSocket) => this.verifyPeer(socket),
    refused: (reason, detail, remote) => this.refused(reason, detail, remote),
    // Connections end at their client certificate's notAfter and when a retired root was theirs.
    watchTrust: (listener) => this.onTrustChange(listener),
    // A change to STRICT ends open plaintext connections at once.
    watchMode: (listener) => this.onPolicyApplied(listener),
    // A revoked client identity: its handshakes are refused, its open connections ended.
    revoked: (peerId) => this.revokedPeer(peerId),
    watchRevocations: (listener) => this.onRevocationChange(listener),
  }

  /** The client's SPIFFE identity checked on a server-side TLS socket. */
  verifyPeer(socket: TLSSocket): PeerIdentity | string {
    if (!this.lib) return 'no certificate code loaded'
    const r = this.lib.tls.verifyClientPeer(socket, this.trustDomain())
    if (typeof r === 'string') return r
    const w = workloadOf(r)
    return { id: r.toString(), trustDomain: r.trustDomain, namespace: w?.namespace, service: w?.service }
  }

  /**
   * How to connect to `e` of `service`: TLS when the endpoint is a mesh member, this instance has
   * a certificate and the destination's mode is not DISABLE. A STRICT destination with no
   * certificate here is an error (never a silent plaintext fallback); a PERMISSIVE one falls back.
   */
  connectPlan(service: ServiceSettings, e: Endpoint): ConnectPlan {
    if (!e.mtls || !this.d.controlled) return PLAIN
    const mode = this.modeFor(service.name, service.namespace)
    if (mode === 'DISABLE') return PLAIN
    const m = this.provider?.current()
    if (!m) {
      if (mode === 'PERMISSIVE') return PLAIN
      return { error: new WeftError('WEFT_ERR_UNAUTHENTICATED', `${service.name}: requires mTLS (STRICT) and this instance (${this.d.service}) has no certificate yet; the daemon signs one after registration`) }
    }
    const revoked = this.outboundRevocation(service, m.bundle.trustDomain)
    if (revoked) return { error: revoked }
    // clientTlsOptions caches one options object per (certificate, expected ID).
    return { tls: true, options: this.lib!.tls.clientTlsOptions(m, this.expectedId(service, m.bundle.trustDomain)) }
  }

  private expectedId(service: ServiceSettings, trustDomain: string): SpiffeId {
    let id = this.expectedIds.get(service)
    if (id === undefined || id.trustDomain !== trustDomain) {
      id = workloadId(trustDomain, service.namespace, service.name)
      this.expectedIds.set(service, id)
    }
    return id
  }

  /**
   * TLS options for this instance's calls to the control daemon: its SVID, and the daemon's SPIFFE
   * ID (spiffe://<td>/ns/weft-system/sa/weft-daemon) checked before anything is sent; undefined
   * while there is no certificate (then the control client uses plaintext and its tokens).
   */
  controlTls(): ConnectionOptions | undefined {
    const m = this.provider?.current()
    if (!m || !this.lib) return undefined
    return this.lib.tls.clientTlsOptions(m, workloadId(m.bundle.trustDomain, DAEMON_NAMESPACE, DAEMON_SERVICE))
  }

  /** Refusals are counted always and logged at most once per 10 s (a flood must not flood the log). */
  private refused(reason: FrontDoorRefusal, detail: string, remote: string): void {
    this.d.onRefused?.(reason)
    this.refusalLog(`${this.d.service}: refused a connection from ${remote} (${reason}): ${detail.trim()}`)
  }

}

const PLAIN: ConnectPlan = { tls: false }

/** The earliest notAfter (ms) among the chain above the leaf and the bundle's roots; undefined when none parses. */
function caNotAfter(m: IdentityMaterial): number | undefined {
  let earliest: number | undefined
  for (const pem of [...m.certChainPem.slice(1), ...m.bundle.roots]) {
    try {
      const t = Date.parse(new X509Certificate(pem).validTo)
      if (Number.isFinite(t) && (earliest === undefined || t < earliest)) earliest = t
    } catch {
      // Not a certificate node can read: it has no expiry to report.
    }
  }
  return earliest
}

function sameRoots(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r) => b.includes(r))
}
