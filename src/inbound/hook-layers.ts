// The server 'identity' and 'authz' layers: where the peer's certificate or JWT is verified and
// AuthorizationPolicy is enforced. Until the identity issue lands they pass requests through and
// cost nothing (wrap returns next).
import type { ServerLayer } from './call.js'

export const inboundIdentityLayer: ServerLayer = {
  role: 'identity',
  why: 'after shedding (verifying a JWT costs CPU) and before authz, which needs the principal',
  wrap: (next) => next,
}

export const authzLayer: ServerLayer = {
  role: 'authz',
  why: 'last before the handler: decides on the verified principal and the request',
  wrap: (next) => next,
}
