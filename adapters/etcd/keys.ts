// The etcd store's key layout and value formats (all values JSON except the admin token hash):
//
//   <prefix>policy               { resources, at, action, summary, nonce }  version = its mod revision
//   <prefix>history/<version>    { version, at, action, summary, resources } the versions before the
//                                current one, <version> zero-padded to 20 digits so keys sort by it
//   <prefix>instances/<id>       InstanceRecord (heldBy: the daemon holding its stream), on a lease
//   <prefix>tokens/join/<hash>   JoinToken
//   <prefix>tokens/admin         the admin token's SHA-256 (hex), plain text; created once, never replaced
//   <prefix>ca/state             the CA made by the first daemon: its keys, the previous CA during a
//                                rotation, the trust bundle (what ca.json holds on the embedded store)
//   <prefix>ca/operator-bundle   an operator CA's trust bundle and its sequence (no key)
//   <prefix>ca/jwt-key           the JWT-SVID private JWK
// The ca/ values are written by src/daemon (ca-service.ts, jwt-service.ts); the store keeps them as is.
import type { HistoryEntry, InstanceRecord, JoinToken, SharedDocName, StoredResource } from '../../src/daemon/store.js'

export interface Keys {
  prefix: string
  policy: string
  historyPrefix: string
  history(version: number): string
  instancesPrefix: string
  instance(id: string): string
  joinPrefix: string
  join(hash: string): string
  admin: string
  shared(name: SharedDocName): string
}

const SHARED: Record<SharedDocName, string> = { ca: 'ca/state', 'ca-operator-bundle': 'ca/operator-bundle', 'jwt-key': 'ca/jwt-key' }

export function keysFor(prefix: string): Keys {
  const historyPrefix = `${prefix}history/`
  const instancesPrefix = `${prefix}instances/`
  const joinPrefix = `${prefix}tokens/join/`
  return {
    prefix,
    policy: `${prefix}policy`,
    historyPrefix,
    history: (version) => historyPrefix + String(version).padStart(20, '0'),
    instancesPrefix,
    instance: (id) => instancesPrefix + id,
    joinPrefix,
    join: (hash) => joinPrefix + hash,
    admin: `${prefix}tokens/admin`,
    shared: (name) => prefix + SHARED[name],
  }
}

/** The policy key's value: the resources and the history entry of the write that made them. */
export interface PolicyValue extends Pick<HistoryEntry, 'at' | 'action' | 'summary'> {
  resources: StoredResource[]
  /** Random per write: tells a writer that a conflict it sees after a retried request is its own write. */
  nonce?: string
}

export interface HistoryValue extends HistoryEntry {
  resources: StoredResource[]
}

function parse(raw: Buffer | string): unknown {
  try {
    return JSON.parse(raw.toString()) as unknown
  } catch {
    return undefined
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function resourcesOf(v: Record<string, unknown>): StoredResource[] | undefined {
  const rs = v.resources
  if (!Array.isArray(rs)) return undefined
  for (const r of rs) {
    if (!isObject(r) || typeof r.kind !== 'string' || typeof r.namespace !== 'string' || typeof r.name !== 'string' || !isObject(r.value)) return undefined
  }
  return rs as StoredResource[]
}

const ACTIONS = new Set(['apply', 'delete', 'rollback'])

function entryOf(v: Record<string, unknown>): Pick<HistoryEntry, 'at' | 'action' | 'summary'> {
  return {
    at: typeof v.at === 'string' ? v.at : '',
    action: typeof v.action === 'string' && ACTIONS.has(v.action) ? (v.action as HistoryEntry['action']) : 'apply',
    summary: typeof v.summary === 'string' ? v.summary : '',
  }
}

/** The policy key's value, or undefined when it is not one (written by something else). */
export function decodePolicy(raw: Buffer | string): PolicyValue | undefined {
  const v = parse(raw)
  if (!isObject(v)) return undefined
  const resources = resourcesOf(v)
  if (!resources) return undefined
  return { resources, ...entryOf(v), nonce: typeof v.nonce === 'string' ? v.nonce : undefined }
}

export function decodeHistory(raw: Buffer | string, version: number): HistoryValue | undefined {
  const v = parse(raw)
  if (!isObject(v)) return undefined
  const resources = resourcesOf(v)
  if (!resources) return undefined
  return { version, ...entryOf(v), resources }
}

export function decodeInstance(raw: Buffer | string, id: string): InstanceRecord | undefined {
  const v = parse(raw)
  if (!isObject(v) || v.id !== id || typeof v.service !== 'string' || typeof v.namespace !== 'string') return undefined
  return v as unknown as InstanceRecord
}

export function decodeJoinToken(raw: Buffer | string, hash: string): JoinToken | undefined {
  const v = parse(raw)
  if (!isObject(v) || v.hash !== hash || !Array.isArray(v.services)) return undefined
  return v as unknown as JoinToken
}

/** The policy key's value; an unreadable one is an error, never an empty policy. */
export function policyValue(kv: { key: Buffer; value: Buffer; mod_revision: string }): PolicyValue {
  const v = decodePolicy(kv.value)
  if (!v) throw new Error(`etcd store: ${kv.key.toString()} (mod revision ${kv.mod_revision}) is not a weft policy value`)
  return v
}
