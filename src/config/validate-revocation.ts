// IdentityRevocation validation (RELIABILITY M8, the "kill connections of identity X" switch). The
// resource names the revoked workload by metadata (namespace = its namespace, name = its service),
// so one identity has at most one revocation; spec.spiffeId must be that workload's SPIFFE ID
// (any trust domain: the daemon fills in its CA's), spec.reason says why, for every refusal.
import type { Checker } from './checker.js'
import type { RevocationSettings } from './types.js'
import { TRUST_DOMAIN } from './validate-mesh.js'

const SCHEME = 'spiffe://'
/** Printable text on one line: it is repeated in refusals, logs and error messages. */
const REASON = /^[^\u0000-\u001f\u007f]{1,512}$/

export function validateIdentityRevocation(c: Checker, name: string, namespace: string, rawSpec: unknown): RevocationSettings | undefined {
  const spec = c.object(rawSpec, ['spec'], ['spiffeId', 'reason', 'revokedAt'])
  if (!spec) {
    c.error(['spec'], 'is required (want { spiffeId, reason })', 'WEFT_E_FIELD_REQUIRED')
    return undefined
  }
  const spiffeId = c.string(spec.spiffeId, ['spec', 'spiffeId'], { required: true })
  const reason = c.string(spec.reason, ['spec', 'reason'], { required: true, pattern: REASON })
  const revokedAt = c.string(spec.revokedAt, ['spec', 'revokedAt'])
  if (revokedAt !== undefined && !Number.isFinite(Date.parse(revokedAt))) c.error(['spec', 'revokedAt'], `must be an ISO time (got "${revokedAt}")`)
  if (spiffeId !== undefined && !isWorkloadIdOf(spiffeId, namespace, name)) {
    c.error(['spec', 'spiffeId'], `must be spiffe://<trust domain>/ns/${namespace}/sa/${name}: the workload metadata.namespace and metadata.name name (got "${spiffeId}")`)
    return undefined
  }
  if (spiffeId === undefined || reason === undefined) return undefined
  return { name, namespace, spiffeId, reason, ...(revokedAt !== undefined ? { revokedAt } : {}) }
}

/** Compared as parts (a trust domain, then the exact path), never as a pattern over the whole ID. */
function isWorkloadIdOf(id: string, namespace: string, service: string): boolean {
  if (!id.startsWith(SCHEME)) return false
  const rest = id.slice(SCHEME.length)
  const slash = rest.indexOf('/')
  if (slash < 0) return false
  return TRUST_DOMAIN.test(rest.slice(0, slash)) && rest.slice(slash) === `/ns/${namespace}/sa/${service}`
}
