// Revocation of one workload identity (RELIABILITY M8: "kill connections of identity X"). A
// revocation is a policy resource, kind IdentityRevocation, named by the identity's namespace and
// service, so it is stored, versioned, kept in history, shared through etcd and pushed in every
// instance's view (it is not inbound-only: view-scope.ts gives it to all) exactly as policy is,
// and instances ACK it with the version. While it stands the daemon signs no X.509- or JWT-SVID
// for the identity, and every instance refuses mTLS with it and ends the connections it holds
// (src/mesh-identity.ts). A rollback keeps the revocations in force (policy-service.ts).
import type { Logger } from '../util/logger.js'
import { parseSpiffeId, workloadId, workloadOf } from '../identity/spiffe-id.js'
import { isWeftError } from '../errors/index.js'
import { DNS_NAME } from '../config/names.js'
import { badRequest, HttpError, notFound } from './http-error.js'
import type { PolicyService } from './policy-service.js'
import type { InstanceRecord, Store, StoredResource } from './store.js'

export const REVOCATION_KIND = 'IdentityRevocation'
const MAX_REASON = 512

/** A revocation as the API shows it. */
export interface RevocationView {
  spiffeId: string
  namespace: string
  service: string
  reason: string
  revokedAt?: string
}

interface RevocationSpec {
  spiffeId: string
  reason: string
  revokedAt?: string
}

export class RevocationService {
  constructor(
    private readonly store: Store,
    private readonly policy: PolicyService,
    /** The CA's trust domain: the one revoked IDs are in. */
    private readonly trustDomain: string,
    private readonly logger: Logger,
  ) {}

  /** GET /v1/revocations */
  async list(): Promise<{ version: number; revocations: RevocationView[] }> {
    const p = await this.store.readPolicy()
    return { version: p.version, revocations: p.resources.filter(isRevocation).map(viewOf) }
  }

  /**
   * POST /v1/revocations body { spiffeId } or { service, namespace? }, and { reason }. Revoking an
   * identity already revoked updates the reason and keeps the first time.
   */
  async revoke(body: Record<string, unknown>): Promise<{ version: number; action: string; revocation: RevocationView }> {
    for (const k of Object.keys(body)) if (!['spiffeId', 'service', 'namespace', 'reason'].includes(k)) throw badRequest(`revocation: unknown field "${k}" (allowed: spiffeId, service, namespace, reason)`)
    const { namespace, service } = this.identityOf(body)
    const reason = body.reason
    if (typeof reason !== 'string' || reason.trim() === '' || reason.length > MAX_REASON || /[\u0000-\u001f\u007f]/.test(reason)) {
      throw badRequest(`revocation: reason is required: one line of text, at most ${MAX_REASON} characters (it is shown in every refusal)`)
    }
    const spiffeId = workloadId(this.trustDomain, namespace, service).toString()
    const before = (await this.store.readPolicy()).resources.find((r) => isRevocation(r) && r.namespace === namespace && r.name === service)
    const revokedAt = (before?.value as { spec?: RevocationSpec } | undefined)?.spec?.revokedAt ?? new Date().toISOString()
    const resource = { apiVersion: 'weft/v1', kind: REVOCATION_KIND, metadata: { name: service, namespace }, spec: { spiffeId, reason: reason.trim(), revokedAt } }
    const result = await this.policy.apply(JSON.stringify(resource), false)
    const action = result.changes[0]?.action ?? 'unchanged'
    const view = { spiffeId, namespace, service, reason: resource.spec.reason, revokedAt }
    if (action !== 'unchanged') this.logger.warn(`revoked ${spiffeId} (reason: ${view.reason}) at policy version ${result.version}: no certificate is signed for it, instances end its mTLS connections`)
    return { version: result.version, action, revocation: view }
  }

  /** DELETE /v1/revocations/:namespace/:service: new certificates and connections are allowed again. */
  async lift(namespace: string, service: string): Promise<{ version: number; lifted: RevocationView }> {
    const gone = (await this.store.readPolicy()).resources.find((r) => isRevocation(r) && r.namespace === namespace && r.name === service)
    if (!gone) throw notFound(`${workloadId(this.trustDomain, namespace, service).toString()} is not revoked (weft revoke --list shows the revocations)`)
    const { version } = await this.policy.delete(REVOCATION_KIND, service, namespace)
    const lifted = viewOf(gone)
    this.logger.info(`lifted the revocation of ${lifted.spiffeId} at policy version ${version}`)
    return { version, lifted }
  }

  /**
   * Before signing for `rec`: a 403 naming the revocation when its identity is revoked. Read from
   * the store (not the pushed view), so a CSR right after a revoke is refused too.
   */
  async refuseSigning(rec: InstanceRecord, what: string): Promise<void> {
    const r = (await this.store.readPolicy()).resources.find((x) => isRevocation(x) && x.namespace === rec.namespace && x.name === rec.service)
    if (!r) return
    const v = viewOf(r)
    throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `instance ${rec.id}: the identity ${v.spiffeId} is revoked (reason: ${v.reason}${v.revokedAt ? `; since ${v.revokedAt}` : ''}): no ${what} is signed for it until the revocation is lifted (weft unrevoke ${v.spiffeId})`, { revoked: v.spiffeId, reason: v.reason, ...(v.revokedAt ? { revokedAt: v.revokedAt } : {}) })
  }

  /** The identity a request names: a SPIFFE ID of this trust domain, or a service (and namespace). */
  private identityOf(body: Record<string, unknown>): { namespace: string; service: string } {
    const { spiffeId, service, namespace } = body
    if ((spiffeId === undefined) === (service === undefined)) throw badRequest('revocation: give either spiffeId or service (with namespace, default "default")')
    if (spiffeId !== undefined) {
      if (namespace !== undefined) throw badRequest('revocation: namespace goes with service; a spiffeId names its own')
      if (typeof spiffeId !== 'string') throw badRequest('revocation: spiffeId must be a string')
      let id
      try {
        id = parseSpiffeId(spiffeId)
      } catch (err) {
        throw badRequest(`revocation: ${isWeftError(err) ? err.message : String(err)}`)
      }
      const w = workloadOf(id)
      if (id.trustDomain !== this.trustDomain || !w || !DNS_NAME.test(w.namespace) || !DNS_NAME.test(w.service)) throw badRequest(`revocation: ${spiffeId} is not a workload identity this daemon signs for (want spiffe://${this.trustDomain}/ns/<namespace>/sa/<service>)`)
      return w
    }
    if (typeof service !== 'string' || !DNS_NAME.test(service)) throw badRequest('revocation: service must be a service name (lowercase letters, digits, "-" and ".")')
    if (namespace !== undefined && (typeof namespace !== 'string' || !DNS_NAME.test(namespace))) throw badRequest('revocation: namespace must be a namespace name (lowercase letters, digits, "-" and ".")')
    return { namespace: (namespace as string | undefined) ?? 'default', service }
  }
}

export function isRevocation(r: StoredResource): boolean {
  return r.kind === REVOCATION_KIND
}

function viewOf(r: StoredResource): RevocationView {
  const spec = (r.value as { spec?: Partial<RevocationSpec> }).spec ?? {}
  return { spiffeId: spec.spiffeId ?? '', namespace: r.namespace, service: r.name, reason: spec.reason ?? '', ...(spec.revokedAt !== undefined ? { revokedAt: spec.revokedAt } : {}) }
}
