// The instance's views of the daemon's config, as pure functions the control client applies: a view
// from a watch message (a snapshot, or a delta on the view it was derived from), the anti-rollback
// check (RELIABILITY S8d), the endpoints-on-the-last-good-policy view a refused policy leaves, and
// the shape check that NACKs a message of an unknown type or with fields missing (RELIABILITY B3).
import { MAX_NESTING } from '../config/nesting.js'
import type { EndpointMap, WatchMessage } from './protocol.js'

/** What the daemon says an instance should run: policy resources and registry endpoints. */
export interface ControlView {
  version: number
  resources: object[]
  endpoints: EndpointMap
  /** Resources the daemon removed on purpose, "kind/namespace/name" (protocol.ts; deletion-guard.ts). */
  deleted?: string[]
}

/**
 * The view a config message describes: a snapshot as is, a delta on `latest` (false when it was
 * derived from another base: the stream must be opened again); undefined for other messages.
 */
export function viewOf(msg: WatchMessage, latest: ControlView | undefined): ControlView | false | undefined {
  if (msg.type === 'snapshot') return { version: msg.version, resources: msg.resources, endpoints: msg.endpoints, ...(msg.deleted ? { deleted: msg.deleted } : {}) }
  if (msg.type !== 'endpoints' && msg.type !== 'policy') return undefined
  if (!latest || latest.version !== msg.base) return false
  const resources = msg.type === 'policy' ? msg.resources : latest.resources
  const deleted = msg.type === 'policy' ? msg.deleted : undefined
  const view: ControlView = { version: msg.version, resources, endpoints: { ...latest.endpoints, ...msg.endpoints }, ...(deleted ? { deleted } : {}) }
  for (const [svc, list] of Object.entries(msg.endpoints)) if (list.length === 0) delete view.endpoints[svc]
  return view
}

/**
 * Protocol features this instance understands, by the names a daemon may list in a message's
 * `critical`. A daemon newer than the instance lists there what the instance must not ignore —
 * a field that restricts access, which an older instance skipping it would leave open (RELIABILITY
 * S7; CVE-2022-21679 was an older proxy dropping a newer policy field). A message naming a feature
 * not here is NACKed: the instance keeps the policy it runs, or with none yet refuses requests.
 */
export const UNDERSTOOD_FEATURES: ReadonlySet<string> = new Set(['deleted'])
/** At most this many names in `critical` are read (a daemon lists a handful). */
const MAX_CRITICAL = 64

/** The watch message types an instance takes (ping and bundle are the client's; the rest views). */
const KNOWN_TYPES = new Set(['snapshot', 'policy', 'endpoints', 'ping', 'bundle'])

/** A config version: versions only grow from 0. */
export function isVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

/**
 * Why a watch message (an object with a string type: ndjson.ts) cannot be taken, or undefined: an
 * unknown type (RELIABILITY B3: a wrong type is NACKed, not skipped unseen), or a config message
 * whose fields are missing or of the wrong shape (it would otherwise fail deep inside compose, or
 * worse, become the base of the next delta). The answer names the field.
 */
export function malformed(msg: WatchMessage): string | undefined {
  const type = (msg as { type: string }).type
  if (!KNOWN_TYPES.has(type)) return `unknown watch message type ${JSON.stringify(type.slice(0, 64))} (this instance takes snapshot, policy, endpoints, ping and bundle); not applied`
  const m = msg as unknown as Record<string, unknown>
  const bad = (what: string) => `${type} message: ${what}`
  if (m.critical !== undefined) {
    const c = m.critical
    if (!Array.isArray(c) || c.length > MAX_CRITICAL || c.some((f) => typeof f !== 'string')) return bad(`critical is not a list of at most ${MAX_CRITICAL} feature names`)
    const unknown = (c as string[]).filter((f) => !UNDERSTOOD_FEATURES.has(f))
    if (unknown.length > 0) {
      const names = unknown.slice(0, 8).map((f) => JSON.stringify(f.slice(0, 64))).join(', ')
      return bad(`needs ${names}, which this instance does not understand (it understands: ${[...UNDERSTOOD_FEATURES].join(', ')}); the daemon is newer than this instance: upgrade it. Not applied`)
    }
  }
  if (type !== 'snapshot' && type !== 'policy' && type !== 'endpoints') return undefined
  if (!isVersion(m.version)) return bad('version is not a version (an integer ≥ 0)')
  if (type !== 'snapshot' && !isVersion(m.base)) return bad('base is not a version (an integer ≥ 0)')
  if (type !== 'endpoints') {
    if (!Array.isArray(m.resources)) return bad('resources is not a list')
    const i = m.resources.findIndex((r) => typeof r !== 'object' || r === null || Array.isArray(r))
    if (i >= 0) return bad(`resources[${i}] is not an object (a policy resource)`)
    // JSON.parse takes any depth, but compose, validation and the policy comparison recurse per level.
    const deep = m.resources.findIndex((r) => nestedDeeperThan(r, MAX_NESTING))
    if (deep >= 0) return bad(`resources[${deep}] is nested more than ${MAX_NESTING} levels deep (a policy nests about ten)`)
    if (m.deleted !== undefined) {
      if (!Array.isArray(m.deleted)) return bad('deleted is not a list (of "kind/namespace/name")')
      const k = m.deleted.findIndex((d) => typeof d !== 'string')
      if (k >= 0) return bad(`deleted[${k}] is not a string ("kind/namespace/name")`)
    }
  }
  if (typeof m.endpoints !== 'object' || m.endpoints === null || Array.isArray(m.endpoints)) return bad('endpoints is not an object (service → list of endpoints)')
  for (const [svc, list] of Object.entries(m.endpoints)) {
    const key = JSON.stringify(svc.slice(0, 256))
    if (!Array.isArray(list)) return bad(`endpoints[${key}] is not a list`)
    const j = list.findIndex((e: unknown) => !isEndpoint(e))
    if (j >= 0) return bad(`endpoints[${key}][${j}] is not an endpoint (address "host:port", protocol http or grpc, labels)`)
  }
  return undefined
}

/** Whether objects and arrays nest more than `limit` levels in `value` (`value` itself is level 1); no recursion. */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (typeof v !== 'object' || v === null) continue
    if (depth > limit) return true
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1])
  }
  return false
}

function isEndpoint(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false
  const { address, protocol, labels } = e as Record<string, unknown>
  const labelsOk = labels === undefined || (typeof labels === 'object' && labels !== null && !Array.isArray(labels) && Object.values(labels).every((l) => typeof l === 'string'))
  return typeof address === 'string' && (protocol === 'http' || protocol === 'grpc') && labelsOk
}

/**
 * Anti-rollback: versions only grow (embedded store: reserved blocks; etcd: revisions), so a view
 * older than the one running is a replay, or a daemon whose store was reset; it is refused whole,
 * endpoints too (`weft rollback` makes a new, higher version). So is the running version with
 * another policy (one version is one content). Undefined when `view` may be applied.
 *
 * An older number with the very content that runs is no rollback, and is taken: daemons sharing a
 * store number a version by the newest store revision in their coalesce window, invisible changes
 * included, so two of them can give one content different numbers (one failed over from may have
 * said 23 where the other says 21). Refusing it left the instances STALE until the next change.
 */
export function staleReason(view: ControlView, running: ControlView | undefined): string | undefined {
  if (running === undefined) return undefined
  if (view.version < running.version && sameContent(view, running)) return undefined
  if (view.version < running.version) return `version ${view.version} is older than version ${running.version}, which this instance runs: refused as a replayed or rolled-back view (if the daemon's store was reset on purpose, restart the instances)`
  if (view.version === running.version && view.resources !== running.resources && canonical(view.resources) !== canonical(running.resources)) {
    return `version ${view.version} is the version this instance runs, with another policy: refused as a forged or reset view (if the daemon's store was reset on purpose, restart the instances)`
  }
  return undefined
}

/** The same resources and endpoints (compared only for a view numbered below the one running). */
function sameContent(a: ControlView, b: ControlView): boolean {
  return (a.resources === b.resources || canonical(a.resources) === canonical(b.resources)) && (a.endpoints === b.endpoints || canonical(a.endpoints) === canonical(b.endpoints))
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
