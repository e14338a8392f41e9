// A policy resource's identity as the daemon keys it ("kind/namespace/name", a missing namespace
// read as default: policy-service.ts), computed from the resource object, so the daemon's hub and
// an instance name a resource the same way in a view's `deleted` list (RELIABILITY F5).

/** "kind/namespace/name", or undefined for an object without a kind and a name. */
export function resourceKey(value: unknown): string | undefined {
  const v = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null
  if (typeof v !== 'object' || v === null || typeof v.kind !== 'string') return undefined
  const meta = typeof v.metadata === 'object' && v.metadata !== null ? v.metadata : undefined
  if (typeof meta?.name !== 'string') return undefined
  return `${v.kind}/${typeof meta.namespace === 'string' ? meta.namespace : 'default'}/${meta.name}`
}
