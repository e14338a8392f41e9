// What of the policy one instance is shown (RELIABILITY S8b: an instance cannot read another's
// config). Everything it needs to call out stays (Services, Routes, MeshConfig, PeerAuthentication:
// a caller needs its destinations' mTLS modes); the inbound policy of other services —
// AuthorizationPolicy and RequestAuthentication, who may call what and which issuers they trust —
// goes only to the services it selects. An SMI TrafficTarget is an AuthorizationPolicy on its
// destination service (config/translate) and is scoped as one.

/** Instances of one namespace/service see the same view. */
export interface ViewScope {
  namespace: string
  service: string
}

const INBOUND_ONLY = new Set(['AuthorizationPolicy', 'RequestAuthentication', 'TrafficTarget'])

export function scopeKey(s: ViewScope): string {
  return `${s.namespace}/${s.service}`
}

export function scopeResources(resources: readonly object[], scope: ViewScope): object[] {
  return resources.filter((r) => {
    const res = r as { kind?: unknown; metadata?: { namespace?: unknown }; spec?: { service?: unknown; destination?: { name?: unknown } } }
    if (typeof res.kind !== 'string' || !INBOUND_ONLY.has(res.kind)) return true
    const ns = typeof res.metadata?.namespace === 'string' ? res.metadata.namespace : 'default'
    // A TrafficTarget names no service: it reaches no one but its destination (fail closed).
    const svc = res.kind === 'TrafficTarget' ? String(res.spec?.destination?.name) : res.spec?.service
    return ns === scope.namespace && (svc === undefined || svc === scope.service)
  })
}
