// The instance's views of the daemon's config, as pure functions the control client applies: a view
// from a watch message (a snapshot, or a delta on the view it was derived from), the anti-rollback
// check (RELIABILITY S8d), and the endpoints-on-the-last-good-policy view a refused policy leaves.
import type { EndpointMap, WatchMessage } from './protocol.js'

/** What the daemon says an instance should run: policy resources and registry endpoints. */
export interface ControlView {
  version: number
  resources: object[]
  endpoints: EndpointMap
}

/**
 * The view a config message describes: a snapshot as is, a delta on `latest` (false when it was
 * derived from another base: the stream must be opened again); undefined for other messages.
 */
export function viewOf(msg: WatchMessage, latest: ControlView | undefined): ControlView | false | undefined {
  if (msg.type === 'snapshot') return { version: msg.version, resources: msg.resources, endpoints: msg.endpoints }
  if (msg.type !== 'endpoints' && msg.type !== 'policy') return undefined
  if (!latest || latest.version !== msg.base) return false
  const resources = msg.type === 'policy' ? msg.resources : latest.resources
  const view = { version: msg.version, resources, endpoints: { ...latest.endpoints, ...msg.endpoints } }
  for (const [svc, list] of Object.entries(msg.endpoints)) if (list.length === 0) delete view.endpoints[svc]
  return view
}

/**
 * Anti-rollback: versions only grow (embedded store: reserved blocks; etcd: revisions), so a view
 * older than the one running is a replay, or a daemon whose store was reset; it is refused whole,
 * endpoints too (`weft rollback` makes a new, higher version). So is the running version with
 * another policy (one version is one content). Undefined when `view` may be applied.
 */
export function staleReason(view: ControlView, running: ControlView | undefined): string | undefined {
  if (running === undefined) return undefined
  if (view.version < running.version) return `version ${view.version} is older than version ${running.version}, which this instance runs: refused as a replayed or rolled-back view (if the daemon's store was reset on purpose, restart the instances)`
  if (view.version === running.version && view.resources !== running.resources && canonical(view.resources) !== canonical(running.resources)) {
    return `version ${view.version} is the version this instance runs, with another policy: refused as a forged or reset view (if the daemon's store was reset on purpose, restart the instances)`
  }
  return undefined
}

/**
 * A refused view's endpoints on top of the last applied policy, numbered as that policy (the
 * instance does not run this version's policy), so one refused policy does not freeze every
 * endpoint list; undefined when there is nothing new to apply that way.
 */
export function endpointsOnGoodPolicy(view: ControlView, good: ControlView | undefined, running: ControlView | undefined): ControlView | undefined {
  if (!good) return undefined
  const newEndpoints = running === undefined || canonical(running.endpoints) !== canonical(view.endpoints)
  const otherPolicy = good.resources !== view.resources && canonical(good.resources) !== canonical(view.resources)
  return newEndpoints && otherPolicy ? { version: good.version, resources: good.resources, endpoints: view.endpoints } : undefined
}

/** JSON with object keys sorted: two policies compare equal whatever their field order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => {
    if (typeof val !== 'object' || val === null || Array.isArray(val)) return val
    const sorted = Object.create(null) as Record<string, unknown>
    for (const k of Object.keys(val).sort()) sorted[k] = (val as Record<string, unknown>)[k]
    return sorted
  })
}
