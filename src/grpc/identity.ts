// mTLS for gRPC (identity issue): grpc-js credentials fed by the instance's SVID through a
// certificate provider, so a renewal or a bundle rotation reaches new connections without
// rebuilding servers or channels (RELIABILITY M7: grpc-js's own certificate-provider path).
// grpc-js keeps an open connection whatever its provider says later, so an endpoint channel (one
// of an endpoint's connections, endpoint-channels.ts) is closed (the next call uses or makes
// another, a new handshake) at its server chain's notAfter or this
// instance's own certificate's, whichever comes first, and when the trust bundle no longer holds
// the root the server's chain goes to. grpc-js closes a channel's HTTP/2 session gracefully: calls
// already on it finish. Servers: see front-door.ts and docs/design/identity-plan.md ("mTLS modes").
import type { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js'
import type { PeerCertificate } from 'node:tls'
import type { ServiceSettings } from '../config/types.js'
import type { Endpoint } from '../discovery/endpoint.js'
import type { ClosableConnection } from './endpoint-channels.js'
import { chainTrusted, expiryWait, peerChainOf, type PeerChain } from '../identity/peer-chain.js'
import type { IdentityMaterial } from '../identity/provider.js'
import type { MeshIdentity } from '../mesh-identity.js'
import type { GrpcModule } from './load.js'

/** Watched channels beyond this are pruned of those already closed (endpoints come and go). */
const WATCHED_PRUNE_AT = 1024

/** One mTLS endpoint channel: the server chain of its latest connection. */
interface ChannelWatch {
  /** The destination (its identity may be revoked). */
  service: ServiceSettings
  /** The connection made with these credentials (bound by its maker right after making it). */
  conn: ClosableConnection | undefined
  settled: boolean
  chain: PeerChain | undefined
  timer: NodeJS.Timeout | undefined
}

type CaListener = (u: { caCertificate: Buffer } | null) => void
type IdListener = (u: { certificate: Buffer; privateKey: Buffer } | null) => void

/** grpc-js's CertificateProvider over the mesh's identity: the bundle as CA, the SVID as identity. */
class MeshCertificateProvider {
  private readonly ca = new Set<CaListener>()
  private readonly id = new Set<IdListener>()

  constructor(private readonly identity: MeshIdentity) {
    identity.onUpdate((m) => this.push(m))
  }

  private push(m: IdentityMaterial | undefined): void {
    const ca = m ? { caCertificate: Buffer.from(m.bundle.roots.join('\n')) } : null
    const id = m ? { certificate: Buffer.from(m.certChainPem.join('\n')), privateKey: Buffer.from(m.keyPem) } : null
    for (const l of this.ca) l(ca)
    for (const l of this.id) l(id)
  }

  // The current values go to a new listener on a later turn, never inside add…Listener: grpc-js's
  // server credentials add their own watcher only after adding ours, and would miss a synchronous
  // answer (the server then drops every connection as "unloaded credentials").
  addCaCertificateListener(l: CaListener): void {
    this.ca.add(l)
    queueMicrotask(() => {
      const m = this.identity.current()
      if (m && this.ca.has(l)) l({ caCertificate: Buffer.from(m.bundle.roots.join('\n')) })
    })
  }
  removeCaCertificateListener(l: CaListener): void {
    this.ca.delete(l)
  }
  addIdentityCertificateListener(l: IdListener): void {
    this.id.add(l)
    queueMicrotask(() => {
      const m = this.identity.current()
      if (m && this.id.has(l)) l({ certificate: Buffer.from(m.certChainPem.join('\n')), privateKey: Buffer.from(m.keyPem) })
    })
  }
  removeIdentityCertificateListener(l: IdListener): void {
    this.id.delete(l)
  }
}

export class GrpcIdentity {
  private provider: MeshCertificateProvider | undefined
  private readonly watched = new Set<ChannelWatch>()

  constructor(private readonly grpc: GrpcModule, private readonly identity: MeshIdentity) {
    identity.onTrustChange(() => this.recheck())
    identity.onRevocationChange(() => this.revocationsChanged())
  }

  private certs(): MeshCertificateProvider {
    return (this.provider ??= new MeshCertificateProvider(this.identity))
  }

  /**
   * mTLS server credentials: the SVID and the bundle through the certificate provider (a renewal or
   * a rotation reaches new connections), a client certificate required and its chain checked
   * against the bundle; the SPIFFE checks on the leaf are the server interceptor's. Each call makes
   * a new object (grpc-js stops watching the provider when the server using it closes).
   */
  mtlsServerCredentials(): ServerCredentials {
    const p = this.certs()
    return this.grpc.experimental.createCertificateProviderServerCredentials(p, p, true)
  }

  /**
   * A port grpc-js binds itself (no daemon, or grpc-js older than 1.11 without connection
   * injection) serves one kind of connection, chosen by the instance's mode when it binds: mTLS in
   * STRICT and PERMISSIVE, insecure in DISABLE or without a daemon. Under a daemon the mesh's own
   * listener (front-door.ts) sorts each connection instead.
   */
  boundServerCredentials(): ServerCredentials {
    if (this.identity.serverMode() === 'DISABLE') return this.grpc.ServerCredentials.createInsecure()
    return this.mtlsServerCredentials()
  }

  /**
   * Channel credentials and options for one channel to an endpoint: mTLS to mesh members, checked
   * by SPIFFE ID. Every channel of an endpoint gets its own (each connection is watched alone);
   * `bind` is then called with the connection made with them.
   */
  channel(service: ServiceSettings | undefined, e: Endpoint): { credentials: ChannelCredentials; options: Record<string, string | number>; bind?: (conn: ClosableConnection) => void } {
    if (!service || !e.mtls || !this.identity.enabled || this.identity.modeFor(service.name, service.namespace) === 'DISABLE') {
      return { credentials: this.grpc.credentials.createInsecure(), options: {} }
    }
    const p = this.certs()
    const check = this.identity.serverCheck(service)
    const w = this.watch(service)
    return {
      bind: (conn) => {
        w.conn = conn
      },
      // A new function per channel: grpc-js then never shares a subchannel (a connection) between
      // an endpoint's old and new channels. It sees each handshake's server chain.
      credentials: this.grpc.experimental.createCertificateProviderChannelCredentials(p, p, {
        checkServerIdentity: (host: string, cert: PeerCertificate) => {
          const err = check(host, cert)
          if (!err) this.connected(w, cert)
          return err
        },
      }),
      // The SNI name: the service's (an IP is not a valid server name; identity is the SPIFFE ID).
      options: { 'grpc.ssl_target_name_override': service.name, 'grpc.default_authority': service.name },
    }
  }

  private watch(service: ServiceSettings): ChannelWatch {
    const w: ChannelWatch = { service, conn: undefined, settled: false, chain: undefined, timer: undefined }
    // The caller binds the connection made with these credentials synchronously (or made none).
    queueMicrotask(() => {
      w.settled = true
    })
    if (this.watched.size >= WATCHED_PRUNE_AT) for (const o of this.watched) if (!this.live(o)) this.forget(o)
    this.watched.add(w)
    return w
  }

  /**
   * A handshake of the channel passed: it lasts until the server chain's notAfter or that of the
   * certificate this instance presented (its current one), whichever is first.
   */
  private connected(w: ChannelWatch, cert: PeerCertificate): void {
    const chain = peerChainOf(cert)
    if (!chain) return
    w.chain = chain
    clearTimeout(w.timer)
    const until = Math.min(chain.notAfter, this.identity.current()?.notAfter ?? Infinity)
    const arm = (): void => {
      const left = until - Date.now()
      if (left <= 0) return this.close(w)
      w.timer = setTimeout(arm, expiryWait(until))
      w.timer.unref()
    }
    arm()
  }

  /** The bundle's roots changed: channels whose server chain it no longer trusts are closed. */
  private recheck(): void {
    const roots = this.identity.current()?.bundle.roots
    for (const w of this.watched) {
      if (!this.live(w)) this.forget(w)
      else if (roots && w.chain && !chainTrusted(w.chain, roots)) this.close(w)
    }
  }

  /**
   * The revoked identities changed (RELIABILITY M8): channels whose server identity (or this
   * instance's own) is revoked are closed, and the next call's handshake is refused by serverCheck,
   * naming it. Channels with no handshake done are closed too: one refused while its identity was
   * revoked waits out grpc-js's reconnect backoff, which must not outlast a lift.
   */
  private revocationsChanged(): void {
    for (const w of this.watched) {
      if (!this.live(w)) this.forget(w)
      else if (w.chain === undefined || this.identity.outboundRevocation(w.service)) this.close(w)
    }
  }

  /** Its connection is still open (or about to be made). */
  private live(w: ChannelWatch): boolean {
    return !w.settled || (w.conn !== undefined && !w.conn.closed)
  }

  /** Closes the connection if still open; the endpoint's next call uses or makes another. */
  private close(w: ChannelWatch): void {
    if (w.conn && !w.conn.closed) w.conn.close()
    this.forget(w)
  }

  private forget(w: ChannelWatch): void {
    clearTimeout(w.timer)
    this.watched.delete(w)
  }
}
