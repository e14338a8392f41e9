// The 'identity' client layer: where outbound mTLS (the caller's SVID, the server's expected
// SPIFFE ID) attaches to the attempt. Until the identity issue lands there is no certificate to
// attach, so the layer passes the attempt through unchanged and costs nothing.
import type { ClientLayer } from '../stack/call.js'

export const outboundIdentityLayer: ClientLayer = {
  role: 'identity',
  why: 'last before the wire: the chosen endpoint decides which peer identity to expect',
  wrap(next) {
    return next
  },
}
