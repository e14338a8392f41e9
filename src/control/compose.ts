// Turns a control view (policy resources + registry endpoints) into the resources an instance
// validates and compiles, so a pushed view goes through the same validation as a file.
// A Service with neither static endpoints nor dns gets the registry's endpoints of that name; a
// registered service with no Service resource gets a default one. One name has one protocol:
// registry endpoints of another protocol are left out.
import type { EndpointMap, RegisteredEndpoint } from './protocol.js'

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
}

export function composeView(resources: readonly object[], endpoints: EndpointMap, opts: ComposeOptions = {}): ComposeResult {
  const out: object[] = []
  const skipped: ComposeResult['skipped'] = []
  const declared = new Set<string>()
  for (const r of resources as ResourceShape[]) {
    if (r?.kind !== 'Service' || typeof r.metadata?.name !== 'string') {
      out.push(r)
      continue
    }
    const name = r.metadata.name
    declared.add(name)
    const spec = (typeof r.spec === 'object' && r.spec !== null ? r.spec : {}) as Record<string, unknown>
    const registered = endpoints[name]
    if (!registered || spec.endpoints !== undefined || spec.dns !== undefined) {
      out.push(r)
      continue
    }
    const protocol = spec.protocol === 'grpc' ? 'grpc' : 'http'
    out.push({ ...r, spec: { ...spec, endpoints: pick(name, registered, protocol, skipped) } })
  }
  for (const name of Object.keys(endpoints).sort()) {
    const registered = endpoints[name]!
    if (declared.has(name) || registered.length === 0) continue
    const protocol = registered[0]!.protocol
    declared.add(name)
    out.push({ apiVersion: 'weft/v1', kind: 'Service', metadata: { name }, spec: { protocol, endpoints: pick(name, registered, protocol, skipped) } })
  }
  if (opts.fillRouteTargets) {
    for (const r of resources as ResourceShape[]) {
      const target = r?.kind === 'Route' ? r.spec?.service : undefined
      if (typeof target !== 'string' || declared.has(target)) continue
      declared.add(target)
      out.push({ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: target }, spec: {} })
    }
  }
  return { resources: out, skipped }
}

function pick(service: string, list: RegisteredEndpoint[], protocol: 'http' | 'grpc', skipped: ComposeResult['skipped']): object[] {
  const seen = new Set<string>()
  const eps: object[] = []
  for (const e of list) {
    if (e.protocol !== protocol) {
      skipped.push({ service, endpoint: e, reason: `protocol ${e.protocol} but Service "${service}" is ${protocol}` })
      continue
    }
    if (seen.has(e.address)) continue
    seen.add(e.address)
    eps.push({ address: e.address, labels: e.labels })
  }
  return eps
}
