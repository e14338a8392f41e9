// The 'identity' client layer: the stack's named place for outbound identity. mTLS itself (the
// caller's SVID, the server's expected SPIFFE ID) is decided per connection, not per attempt: the
// endpoint pool's connector asks MeshIdentity.connectPlan when it dials (http/endpoint-pool.ts), so
// a renewal reaches new connections without any per-request work. The layer passes the attempt
// through and costs nothing; it stays so the stack order (and `weft explain`) shows where it sits.
import type { ClientLayer } from '../stack/call.js'

export const outboundIdentityLayer: ClientLayer = {
  role: 'identity',
  why: 'last before the wire: the chosen endpoint decides which peer identity to expect',
  wrap(next) {
    return next
  },
}
