// The server 'identity' and 'authz' layers. identity verifies the end-user JWT when a
// RequestAuthentication selects the service (the peer's SPIFFE ID was already checked at the TLS
// front door and rides on the call); authz evaluates AuthorizationPolicy on the peer, the JWT and
// the request. Each passes straight through (wrap returns next) when nothing applies, so a mesh
// without such policy pays nothing.
import { WeftError } from '../errors/index.js'
import { authnError } from '../identity/jwt/authenticator.js'
import type { AuthzRequest } from '../authz/types.js'
import { explanationLines } from '../authz/explain.js'
import type { InboundCall, ServerLayer } from './call.js'

export const inboundIdentityLayer: ServerLayer = {
  role: 'identity',
  why: 'after shedding (verifying a JWT costs CPU) and before authz, which needs the principal',
  wrap(next, target) {
    const authn = target.security.authn
    if (!authn) return next
    const rejected = target.security.metrics.authnInvalid
    return (call, done) => {
      authn.authenticate({ headers: call.headers, query: call.query }).then((r) => {
        if (r.kind === 'invalid') {
          rejected.inc({ destination_service: target.service, reason: r.check })
          return done(authnError(r), call)
        }
        if (r.kind === 'ok') call.auth = { principal: r.principal, issuer: r.issuer, subject: r.subject, audiences: r.audiences, claims: r.claims }
        next(call, done)
      }, (err: Error) => done(new WeftError('WEFT_ERR_UNAUTHENTICATED', `JWT could not be checked: ${err.message}`, { cause: err }), call))
    }
  },
}

/** Audit lines are rate-limited: a matching flood must not flood the log. */
const AUDIT_LOG_EVERY_MS = 10_000

export const authzLayer: ServerLayer = {
  role: 'authz',
  why: 'last before the handler: decides on the verified principal and the request',
  wrap(next, target) {
    const closed = target.security.closed
    if (closed !== undefined) return (call, done) => done(new WeftError('WEFT_ERR_CONTROL_UNAVAILABLE', `${target.service}: ${closed}`, { details: { service: target.service, configVersion: target.configVersion } }), call)
    const engine = target.security.authz
    if (!engine) return next
    const { metrics, logger } = target.security
    const debug = target.security.debugAuthz === true
    let lastAuditLog = 0
    return (call, done) => {
      const d = engine.evaluate(requestOf(call))
      if (d.audited.length > 0) {
        for (const policy of d.audited) metrics.authzAudit.inc({ destination_service: target.service, policy })
        const now = Date.now()
        if (now - lastAuditLog >= AUDIT_LOG_EVERY_MS) {
          lastAuditLog = now
          logger.info(`authz audit: ${call.method} ${call.path} from ${call.peer?.id ?? 'a caller without mTLS'} matched AUDIT ${d.audited.join(', ')} (not enforced)`)
        }
      }
      if (d.allowed) return next(call, done)
      const label = d.policy ?? d.reason
      metrics.authzDenied.inc({ destination_service: target.service, policy: label })
      // The policy's name, never its contents: what was matched stays with the operator (weft explain),
      // unless the mesh was made with debug.authz (then the rule-by-rule explanation is added).
      const by = d.policy === undefined ? `(${d.reason})` : d.reason === 'no-allow-matched' ? `no rule of ALLOW ${d.policy} matched` : `${d.reason === 'deny-matched' ? 'DENY' : 'policy'} ${d.policy}${d.rule !== undefined ? ` rule ${d.rule}` : ''}`
      const message = `${target.service}: ${call.method} ${call.path} denied by AuthorizationPolicy: ${by}`
      const details = { service: target.service, policy: d.policy, rule: d.rule, reason: d.reason, configVersion: target.configVersion }
      if (!debug) return done(new WeftError('WEFT_ERR_FORBIDDEN', message, { details }), call)
      const req = requestOf(call)
      const explanation = explanationLines(engine.explain(req), req)
      done(new WeftError('WEFT_ERR_FORBIDDEN', `${message}. Why (debug.authz): ${explanation.map((l) => l.trim()).join('; ')}`, { details: { ...details, explanation } }), call)
    }
  },
}

function requestOf(call: InboundCall): AuthzRequest {
  const a = call.auth
  const azp = a?.claims.azp
  return {
    principal: call.peer?.id,
    namespace: call.peer?.namespace,
    requestPrincipal: a?.principal,
    auth: a ? { audiences: a.audiences, ...(typeof azp === 'string' ? { presenter: azp } : {}), claims: a.claims } : undefined,
    method: call.method,
    path: call.path,
    port: call.port,
    headers: call.headers,
  }
}
