// Turns a control view (policy resources + registry endpoints) into the resources an instance
// validates and compiles, so a pushed view goes through the same validation as a file.
// A Service with neither static endpoints nor dns gets the registry's endpoints of its namespace and
// name; a registered service with no Service resource gets a default one in the namespace of its
// registrations. One name has one protocol:
// registry endpoints of another protocol are left out. Registry endpoints are marked `mtls: true`
// (the daemon is the CA of every instance it registers); whether a call uses it is the caller's
// mTLS mode for that service.
import type { EndpointMap, RegisteredEndpoint } from './protocol.js'
import { parseServiceKey, serviceKey } from './service-key.js'
import { translateValues } from '../config/translate/index.js'

interface ResourceShape {
  apiVersion?: unknown
  kind?: unknown
  metadata?: { name?: unknown; namespace?: unknown } & Record<string, unknown>
  spec?: Record<string, unknown>
}

export interface ComposeResult {
  resources: object[]
  /** Registry endpoints left out, with why (protocol mismatch). */
  skipped: { service: string; endpoint: RegisteredEndpoint; reason: string }[]
}

export interface ComposeOptions {
  /**
   * Give a Route whose service is neither declared nor registered an empty default Service (the
   * instance side: its last instances left; the route must not make the whole view invalid). The
   * daemon's apply check leaves this off, so a Route naming an unknown service is refused.
   */
  fillRouteTargets?: boolean
  /** The namespace of the instance the view is for (preferred among same-named registry services). */
  namespace?: string
}

export function composeView(resources: readonly object[], endpoints: EndpointMap, opts: ComposeOptions = {}): ComposeResult {
  const out: object[] = []
  const skipped: ComposeResult['skipped'] = []
  const registry = byServiceKey(endpoints)
  /** Service name → the namespace of the Service this view holds under that name. */
  const declared = new Map<string, string>()
  const joined = new Set<string>()
  for (const r of resources as ResourceShape[]) {
    if (r?.kind !== 'Service' || typeof r.metadata?.name !== 'string') {
      out.push(r)
      continue
    }
    const name = r.metadata.name
    const namespace = typeof r.metadata.namespace === 'string' ? r.metadata.namespace : 'default'
    if (!declared.has(name)) declared.set(name, namespace)
    const spec = (typeof r.spec === 'object' && r.spec !== null ? r.spec : {}) as Record<string, unknown>
    // Only the registrations of the Service's own namespace join it.
    const key = serviceKey(namespace, name)
    const registered = registry.get(key)
    if (registered) joined.add(key)
    if (!registered || spec.endpoints !== undefined || spec.dns !== undefined) {
      out.push(r)
      continue
    }
    const protocol = spec.protocol === 'grpc' ? 'grpc' : 'http'
    out.push({ ...r, spec: { ...spec, endpoints: pick(key, registered, protocol, skipped) } })
  }
  // Registered services with no Service resource. An instance knows a service by its name, so one
  // name is one service: a declared Service keeps its name, and of registry-only services sharing
  // one, the viewer's namespace wins, then default, then the first; the rest are left out.
  const unclaimed = new Map<string, { namespace: string; key: string; list: RegisteredEndpoint[] }[]>()
  for (const key of [...registry.keys()].sort()) {
    const list = registry.get(key)!
    if (joined.has(key) || list.length === 0) continue
    const { namespace, name } = parseServiceKey(key)
    const owner = declared.get(name)
    if (owner !== undefined) {
      for (const e of list) skipped.push({ service: key, endpoint: e, reason: `registered in namespace ${namespace}, but the Service "${name}" here is the one of namespace ${owner}` })
      continue
    }
    let same = unclaimed.get(name)
    if (!same) unclaimed.set(name, (same = []))
    same.push({ namespace, key, list })
  }
  for (const [name, same] of unclaimed) {
    const chosen = same.find((s) => s.namespace === opts.namespace) ?? same.find((s) => s.namespace === 'default') ?? same[0]!
    for (const s of same) {
      if (s === chosen) continue
      for (const e of s.list) skipped.push({ service: s.key, endpoint: e, reason: `registered in namespace ${s.namespace}, but the service "${name}" here is the one of namespace ${chosen.namespace}` })
    }
    const protocol = chosen.list[0]!.protocol
    declared.set(name, chosen.namespace)
    out.push({ apiVersion: 'weft/v1', kind: 'Service', metadata: { name, namespace: chosen.namespace }, spec: { protocol, endpoints: pick(chosen.key, chosen.list, protocol, skipped) } })
  }
  if (opts.fillRouteTargets) {
    // An HTTPRoute or TrafficSplit names its services as the Route it becomes does.
    for (const r of translateValues(resources) as ResourceShape[]) {
      for (const target of r?.kind === 'Route' ? routeServices(r.spec) : []) {
        if (declared.has(target)) continue
        declared.set(target, 'default')
        out.push({ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: target }, spec: {} })
      }
    }
  }
  return { resources: out, skipped }
}

/**
 * The services a Route sends to: its own, the other Services its backends name and its mirrors'.
 * Each needs a Service in the view (empty until instances register) for the Route to validate.
 */
function routeServices(spec: unknown): string[] {
  const s = spec as { service?: unknown; rules?: unknown } | undefined
  const out: string[] = []
  if (typeof s?.service === 'string') out.push(s.service)
  if (!Array.isArray(s?.rules)) return out
  for (const rule of s.rules as { backends?: unknown; mirror?: { service?: unknown } }[]) {
    if (Array.isArray(rule?.backends)) for (const b of rule.backends as { service?: unknown }[]) if (typeof b?.service === 'string') out.push(b.service)
    if (typeof rule?.mirror?.service === 'string') out.push(rule.mirror.service)
  }
  return out
}

/** The registry by "<namespace>/<name>", a key without namespace read as one in default. */
function byServiceKey(endpoints: EndpointMap): Map<string, RegisteredEndpoint[]> {
  const out = new Map<string, RegisteredEndpoint[]>()
  for (const [k, list] of Object.entries(endpoints)) {
    if (!Array.isArray(list)) continue
    const { namespace, name } = parseServiceKey(k)
    const key = serviceKey(namespace, name)
    out.set(key, [...(out.get(key) ?? []), ...list])
  }
  return out
}

function pick(service: string, list: RegisteredEndpoint[], protocol: 'http' | 'grpc', skipped: ComposeResult['skipped']): object[] {
  const seen = new Set<string>()
  const eps: object[] = []
  for (const e of list) {
    if (e.protocol !== protocol) {
      skipped.push({ service, endpoint: e, reason: `protocol ${e.protocol} but the Service is ${protocol}` })
      continue
    }
    if (seen.has(e.address)) continue
    seen.add(e.address)
    // Every registered instance is a mesh member with an SVID from the daemon's CA: mTLS to it.
    eps.push({ address: e.address, labels: e.labels, mtls: true })
  }
  return eps
}
