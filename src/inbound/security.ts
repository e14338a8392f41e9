// Compiles what the identity and authz server layers enforce for one config version: the
// RequestAuthentication and AuthorizationPolicy that select this service. Done once per version,
// before it is swapped in: a policy that fails to compile makes the version fail (a NACK), and
// the previous one keeps being enforced (RELIABILITY S7).
import { compileAuthz } from '../authz/engine.js'
import type { MeshPolicy } from '../config/types.js'
import { compileRequestAuth } from '../identity/jwt/authenticator.js'
import type { JwksRegistry } from '../identity/jwt/jwks-cache.js'
import type { MeshMetrics } from '../telemetry/metrics.js'
import type { Logger } from '../util/logger.js'
import type { InboundSecurity } from './call.js'

export interface SecurityDeps {
  service: string
  namespace: string
  /** Shared by every version, so remote key sets stay warm across config changes (needed with RequestAuthentication). */
  jwks: JwksRegistry | undefined
  metrics: MeshMetrics
  logger: Logger
  /** createMesh `debug.authz`: denials carry the rule-by-rule explanation. */
  debugAuthz?: boolean
}

export function compileInboundSecurity(policy: MeshPolicy, d: SecurityDeps): InboundSecurity {
  const authz = compileAuthz(policy.authorization, { service: d.service, namespace: d.namespace, defaultAuthorization: policy.mesh.defaultAuthorization })
  const authn = d.jwks ? compileRequestAuth(policy.requestAuthentication, { service: d.service, namespace: d.namespace, jwks: d.jwks, logger: d.logger }) : undefined
  return { ...(authz ? { authz } : {}), ...(authn ? { authn } : {}), metrics: d.metrics, logger: d.logger, ...(d.debugAuthz ? { debugAuthz: true } : {}) }
}
