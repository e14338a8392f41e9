// Which mTLS mode applies to a service: its own PeerAuthentication, else its namespace's (one with
// no service), else MeshConfig's. Earlier resources win within a level, as with routes.
import type { MeshPolicy, MtlsMode } from '../config/types.js'

export function mtlsModeFor(policy: Pick<MeshPolicy, 'mesh' | 'peerAuthentication'>, service: string, namespace: string): MtlsMode {
  let nsWide: MtlsMode | undefined
  for (const p of policy.peerAuthentication) {
    if (p.namespace !== namespace) continue
    if (p.service === service) return p.mtls
    if (p.service === undefined) nsWide ??= p.mtls
  }
  return nsWide ?? policy.mesh.mtls
}
