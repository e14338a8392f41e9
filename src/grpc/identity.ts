// mTLS for gRPC (identity issue): grpc-js credentials fed by the instance's SVID through a
// certificate provider, so a renewal or a bundle rotation reaches new connections without
// rebuilding servers or channels (RELIABILITY M7: grpc-js's own certificate-provider path).
import type { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js'
import type { ServiceSettings } from '../config/types.js'
import type { Endpoint } from '../discovery/endpoint.js'
import type { IdentityMaterial } from '../identity/provider.js'
import type { MeshIdentity } from '../mesh-identity.js'
import type { GrpcModule } from './load.js'

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

  constructor(private readonly grpc: GrpcModule, private readonly identity: MeshIdentity) {}

  private certs(): MeshCertificateProvider {
    return (this.provider ??= new MeshCertificateProvider(this.identity))
  }

  /**
   * A meshed gRPC server's credentials, by the instance's mode when it binds: mTLS with a required
   * client certificate in STRICT and PERMISSIVE (grpc-js serves one kind per port, so PERMISSIVE
   * cannot also take plaintext here), insecure in DISABLE or without a daemon.
   */
  serverCredentials(): ServerCredentials {
    if (this.identity.serverMode() === 'DISABLE') return this.grpc.ServerCredentials.createInsecure()
    const p = this.certs()
    return this.grpc.experimental.createCertificateProviderServerCredentials(p, p, true)
  }

  /** Channel credentials and options for one endpoint: mTLS to mesh members, checked by SPIFFE ID. */
  channel(service: ServiceSettings | undefined, e: Endpoint): { credentials: ChannelCredentials; options: Record<string, string | number> } {
    if (!service || !e.mtls || !this.identity.enabled || this.identity.modeFor(service.name, service.namespace) === 'DISABLE') {
      return { credentials: this.grpc.credentials.createInsecure(), options: {} }
    }
    const p = this.certs()
    return {
      credentials: this.grpc.experimental.createCertificateProviderChannelCredentials(p, p, { checkServerIdentity: this.identity.serverCheck(service) }),
      // The SNI name: the service's (an IP is not a valid server name; identity is the SPIFFE ID).
      options: { 'grpc.ssl_target_name_override': service.name, 'grpc.default_authority': service.name },
    }
  }
}
