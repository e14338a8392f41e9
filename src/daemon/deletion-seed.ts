// RELIABILITY F5 across a daemon restart: the push hub's list of intended deletions (deletions.ts)
// lives in memory, so at start the daemon seeds it from the store's policy history. Without this, an
// instance that missed a DELETE while the daemon restarted would keep the deleted inbound policy
// (the safe side, but wrong, and it says so on every restart).
//
// - Walks the kept history (the stores keep the last 100 versions, so the work is bounded) oldest
//   first, comparing each version with the one kept just before it: what a `delete` or `rollback`
//   version removed, and is absent now, is an intended deletion (latest last, as the hub orders
//   them). A version whose resources cannot be read breaks the chain: the next pair is skipped
//   (never a guess: a resource not listed is kept by the instance, the safe side).
// - A resource still in the policy whose service selector changed between two kept versions (an
//   apply moved it to another service) is remembered with its earlier values: a scope that could see
//   one of them and not the current one is told it is deleted when its first stream opens
//   (DeletionLog.scopeAdded), as the hub does for the scopes it knows when the move is pushed.
// - A store that fails to answer leaves the list empty (logged): the daemon still starts.
import type { Logger } from '../util/logger.js'
import type { PolicyState, Store, StoredResource } from './store.js'

/** Earlier values remembered per moved resource (distinct service selectors). */
const FORMER_PER_KEY = 4

export interface DeletionSeed {
  /** key → its last value, oldest deletion first: removed by a DELETE or a rollback, absent now. */
  deleted: Map<string, object>
  /** key → earlier values of a resource still in the policy, each with a service selector other than today's. */
  former: Map<string, object[]>
}

/** What the kept history says was deleted on purpose before `current` (the policy the hub starts from). */
export async function seedDeletions(store: Store, current: PolicyState, logger: Logger, limit: number): Promise<DeletionSeed> {
  const deleted = new Map<string, object>()
  const former = new Map<string, object[]>()
  try {
    const entries = (await store.history()).filter((e) => e.version <= current.version).reverse()
    let prev: Map<string, object> | undefined
    for (const e of entries) {
      const resources = e.version === current.version ? current.resources : await store.policyAt(e.version)
      const now = resources === undefined ? undefined : byKey(resources)
      if (now === undefined) {
        prev = undefined
        continue
      }
      if (prev !== undefined && (e.action === 'delete' || e.action === 'rollback')) {
        for (const [k, v] of prev) {
          if (now.has(k)) continue
          deleted.delete(k)
          deleted.set(k, v)
        }
      }
      for (const [k, v] of now) {
        deleted.delete(k)
        const before = prev?.get(k)
        if (before !== undefined && selector(before) !== selector(v)) addFormer(former, k, before, limit)
      }
      prev = now
    }
  } catch (err) {
    logger.warn(`push hub: could not read the policy history to list recent deletions (${(err as Error).message}); instances keep an inbound policy deleted before this start until the next DELETE lists it`)
    return { deleted: new Map(), former: new Map() }
  }
  const now = byKey(current.resources)
  for (const k of now.keys()) deleted.delete(k)
  for (const k of deleted.keys()) {
    if (deleted.size <= limit) break
    deleted.delete(k)
  }
  // Only what is still in the policy under another selector than today's counts as moved.
  for (const [k, values] of former) {
    const v = now.get(k)
    const moved = v === undefined ? [] : values.filter((f) => selector(f) !== selector(v))
    if (moved.length > 0) former.set(k, moved)
    else former.delete(k)
  }
  return { deleted, former }
}

/** Remembers `value` as an earlier value of `key` (one per selector, the latest last), within bounds. */
export function addFormer(former: Map<string, object[]>, key: string, value: object, limit: number): void {
  const list = (former.get(key) ?? []).filter((f) => selector(f) !== selector(value))
  list.push(value)
  former.delete(key)
  former.set(key, list.slice(-FORMER_PER_KEY))
  for (const k of former.keys()) {
    if (former.size <= limit) return
    former.delete(k)
  }
}

export function keyOf(r: StoredResource): string {
  return `${r.kind}/${r.namespace}/${r.name}`
}

export function byKey(resources: readonly StoredResource[]): Map<string, object> {
  return new Map(resources.map((r) => [keyOf(r), r.value]))
}

/** An inbound policy's service selector (the only field that moves it between scopes). */
export function selector(v: object): unknown {
  return (v as { spec?: { service?: unknown } }).spec?.service
}
