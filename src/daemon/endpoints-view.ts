// The registry as watchers see it: each registration's endpoint, grouped by service in a stable
// order, and what changed between two such maps (the push hub's `endpoints` deltas).
import type { EndpointMap, RegisteredEndpoint } from '../control/protocol.js'
import { serviceKey } from '../control/service-key.js'
import { formatHostPort } from '../util/host-port.js'
import type { InstanceRecord } from './store.js'

/** What an instance is pushed for one registration; none for a client-only instance. */
export function endpointOf(rec: InstanceRecord): RegisteredEndpoint | undefined {
  if (rec.address === undefined || rec.port === undefined) return undefined
  const labels: Record<string, string> = { ...rec.labels }
  if (rec.locality?.region !== undefined) labels.region = rec.locality.region
  if (rec.locality?.zone !== undefined) labels.zone = rec.locality.zone
  return { address: formatHostPort(rec.address, rec.port), protocol: rec.protocol, labels, instance: rec.id }
}

/**
 * Endpoints by service ("<namespace>/<name>": a registration joins only its own namespace's
 * service), services and endpoints in a stable order (so equal views compare equal).
 */
export function buildEndpoints(records: Iterable<InstanceRecord>): EndpointMap {
  const by = new Map<string, RegisteredEndpoint[]>()
  for (const rec of records) {
    const ep = endpointOf(rec)
    if (!ep) continue
    const key = serviceKey(rec.namespace, rec.service)
    let list = by.get(key)
    if (!list) by.set(key, (list = []))
    list.push(ep)
  }
  const out: EndpointMap = {}
  for (const name of [...by.keys()].sort()) out[name] = by.get(name)!.sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0))
  return out
}

/** The services whose list differs (an empty list for one that is gone); undefined when none. */
export function diffEndpoints(before: EndpointMap, after: EndpointMap): EndpointMap | undefined {
  const changed: EndpointMap = {}
  let any = false
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = before[name] ?? []
    const b = after[name] ?? []
    if (JSON.stringify(a) === JSON.stringify(b)) continue
    changed[name] = b
    any = true
  }
  return any ? changed : undefined
}
