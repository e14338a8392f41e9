// What of the policy one instance is shown (RELIABILITY S8b: an instance cannot read another's
// config). Everything it needs to call out stays (Services, Routes, MeshConfig, PeerAuthentication:
// a caller needs its destinations' mTLS modes); the inbound policy of other services —
// AuthorizationPolicy and RequestAuthentication, who may call what and which issuers they trust —
// goes only to the services it selects.

/** Instances of one namespace/service see the same view. */
export interface ViewScope {
  namespace: string
  service: string
}

const INBOUND_ONLY = new Set(['AuthorizationPolicy', 'RequestAuthentication'])

export function scopeKey(s: ViewScope): string {
  return `${s.namespace}/${s.service}`
}

export function scopeResources(resources: readonly object[], scope: ViewScope): object[] {
  return resources.filter((r) => {
    const res = r as { kind?: unknown; metadata?: { namespace?: unknown }; spec?: { service?: unknown } }
    if (typeof res.kind !== 'string' || !INBOUND_ONLY.has(res.kind)) return true
    const ns = typeof res.metadata?.namespace === 'string' ? res.metadata.namespace : 'default'
    const svc = res.spec?.service
    return ns === scope.namespace && (svc === undefined || svc === scope.service)
  })
}
