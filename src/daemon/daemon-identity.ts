// The daemon's own mTLS identity (identity issue: "an instance authenticates with its join token
// and then its own certificate"). The API's port sorts each connection by its first byte, as a
// PERMISSIVE mesh server does: plaintext for first contact (register with a join token) and for the
// CLI's admin token; TLS with the daemon's SVID, spiffe://<td>/ns/weft-system/sa/weft-daemon from
// its own CA, requiring the client's SVID. An instance that has its certificate calls over mTLS and
// the certificate is its credential (auth.ts); the handshake checks the daemon before any token is sent.
import type { Server } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { attachFrontDoor, type FrontDoorSecurity } from '../http/tls-front-door.js'
import type { TrustBundle } from '../identity/bundle.js'
import type { PeerIdentity } from '../identity/peer.js'
import { IdentityProvider } from '../identity/provider.js'
import { workloadOf } from '../identity/spiffe-id.js'
import { secureContextOptions, verifyClientPeer } from '../identity/tls-material.js'
import type { Logger } from '../util/logger.js'
import { throttledLog } from '../util/log-throttle.js'
import { daemonId, type CaService } from './ca-service.js'

/** Refused TLS connections are logged at most once per this window (then counted). */
const REFUSAL_LOG_MS = 10_000

export class DaemonIdentity {
  private readonly refusalLog = throttledLog((line) => this.logger.warn(line), REFUSAL_LOG_MS)

  private constructor(private readonly provider: IdentityProvider, private readonly ca: CaService, private readonly logger: Logger) {}

  /** Signs the daemon's first certificate (its own CA: no network) and keeps it renewed. */
  static async start(ca: CaService, logger: Logger): Promise<DaemonIdentity> {
    let provider: IdentityProvider | undefined
    const onBundle = (b: TrustBundle) => provider?.updateBundle(b)
    provider = new IdentityProvider({ id: daemonId(ca.trustDomain).toString(), source: { sign: (csr) => ca.signDaemon(csr, onBundle) }, logger })
    if (!(await provider.start())) throw new Error('the daemon could not sign its own certificate')
    return new DaemonIdentity(provider, ca, logger)
  }

  /** TLS (mTLS) on `server`'s port beside plaintext; before it accepts connections. */
  attach(server: Server): void {
    attachFrontDoor(server, this.security)
  }

  close(): void {
    this.provider.close()
  }

  private readonly security: FrontDoorSecurity = {
    mode: () => 'PERMISSIVE',
    contextOptions: () => {
      const m = this.provider.current()
      return m ? secureContextOptions(m) : undefined
    },
    verifyPeer: (socket: TLSSocket): PeerIdentity | string => {
      const r = verifyClientPeer(socket, this.ca.trustDomain)
      if (typeof r === 'string') return r
      const w = workloadOf(r)
      return { id: r.toString(), trustDomain: r.trustDomain, namespace: w?.namespace, service: w?.service }
    },
    // Instances' connections follow their certificates: a stream ends when its client certificate
    // expires (the instance has renewed by then and reconnects with the new one) or when a retired
    // root leaves the bundle.
    watchTrust: (listener) => {
      let roots = this.provider.current()?.bundle.roots.join('\n')
      const onUpdate = (m: { bundle: TrustBundle } | undefined): void => {
        const now = m?.bundle.roots.join('\n')
        if (now === undefined || now === roots) return
        roots = now
        listener()
      }
      this.provider.on('update', onUpdate)
      return () => this.provider.off('update', onUpdate)
    },
    refused: (reason, detail, remote) => this.refusalLog(`control daemon: refused a TLS connection from ${remote} (${reason}): ${detail.trim()}`),

  }
}
