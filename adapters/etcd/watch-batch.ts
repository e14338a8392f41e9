// One watch response (the events etcd sent together) → at most one 'policy' and one 'instances'
// StoreEvent. `known` holds the raw value of every instance the store has reported, so a put
// that changes nothing (the same record moved to another lease: attach after detach, a daemon
// taking an instance over) is not reported as a change.
//
// Revisions: an event carries the mod revision of the newest change it reports, and when a
// response holds both kinds, the one with the older changes goes first and the second carries
// the response's newest revision. So the revisions of the events a store emits increase, and
// each names one state (a policy and a registry).
import type { IEvent } from 'etcd3'
import type { InstanceRecord, StoreEvent } from '../../src/daemon/store.js'
import type { Logger } from '../../src/util/logger.js'
import { decodeInstance, decodePolicy, type Keys } from './keys.js'

export interface BatchState {
  /** id → raw value of each instance reported so far. */
  known: Map<string, string>
}

export interface Batch {
  events: StoreEvent[]
  /** The newest mod revision among all events of the response (0 when none). */
  maxRevision: number
}

export function decodeBatch(keys: Keys, events: IEvent[], state: BatchState, logger: Logger): Batch {
  let maxRevision = 0
  let policy: Extract<StoreEvent, { type: 'policy' }> | undefined
  const put = new Map<string, InstanceRecord>()
  const deleted = new Set<string>()
  let instancesRevision = 0

  for (const ev of events) {
    const key = ev.kv.key.toString()
    const revision = Number(ev.kv.mod_revision)
    if (revision > maxRevision) maxRevision = revision
    if (key === keys.policy) {
      if (ev.type === 'Delete') {
        // No action: the policy key vanished (not a DELETE through the API), so no removal is intended.
        policy = { type: 'policy', revision, state: { version: 0, resources: [] } }
        continue
      }
      const value = decodePolicy(ev.kv.value)
      if (!value) {
        logger.warn(`etcd store: ignoring ${key} at revision ${revision}: not a weft policy value`)
        continue
      }
      policy = { type: 'policy', revision, state: { version: revision, resources: value.resources, action: value.action } }
    } else if (key.startsWith(keys.instancesPrefix)) {
      const id = key.slice(keys.instancesPrefix.length)
      if (ev.type === 'Delete') {
        if (!state.known.delete(id)) continue
        put.delete(id)
        deleted.add(id)
        instancesRevision = revision
        continue
      }
      const raw = ev.kv.value.toString()
      if (state.known.get(id) === raw) continue
      const rec = decodeInstance(raw, id)
      if (!rec) {
        logger.warn(`etcd store: ignoring ${key} at revision ${revision}: not an instance record`)
        continue
      }
      state.known.set(id, raw)
      deleted.delete(id)
      put.set(id, rec)
      instancesRevision = revision
    }
  }

  const instances: StoreEvent | undefined = instancesRevision > 0 && (put.size > 0 || deleted.size > 0)
    ? { type: 'instances', revision: instancesRevision, put: [...put.values()], deleted: [...deleted] }
    : undefined
  const out: StoreEvent[] = []
  if (policy && instances) {
    const [first, second] = policy.revision <= instances.revision ? [policy, instances] : [instances, policy]
    out.push(first, { ...second, revision: Math.max(second.revision, maxRevision) })
  } else if (policy) out.push(policy)
  else if (instances) out.push(instances)
  return { events: out, maxRevision }
}
