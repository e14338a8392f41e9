// Which policy resources were removed on purpose (RELIABILITY F5, gRFC A88's resource deletion): the
// push hub lists them in each view as `deleted`, so an instance can tell a resource the operator
// deleted from one the daemon dropped by mistake (a bug, a store written by hand), which it keeps
// (src/control/deletion-guard.ts).
//
// - Only a version written by DELETE /v1/policy/… or a rollback removes resources on purpose (its
//   store action says so); `apply` upserts and never removes. What a policy event removed is
//   compared with the previous policy the hub saw, event by event, so deletions inside one coalesce
//   window are all listed; a key added back later is no longer deleted.
// - A resource still in the policy can leave a scoped view (an apply moved an AuthorizationPolicy to
//   another service): for that scope it is deleted as well, since the daemon means it.
// - Deltas list what this push removed; snapshots the most recent RECENT_DELETIONS, so an instance
//   that reconnects learns of deletions it missed. Each list holds only what the scope could have
//   seen (its resources' last values go through the same filter as the view), never other
//   services' inbound policy names. Kept in memory; a restarted daemon seeds it from the store's
//   kept policy history (deletion-seed.ts), so an instance that missed a DELETE meanwhile drops it.
// - A scope the log first hears of (its first stream) is told of the resources that moved out of it
//   before (an apply changed their service), from their earlier values (`former`).
import { addFormer, byKey, keyOf, selector, type DeletionSeed } from './deletion-seed.js'
import { scopeResources, type ViewScope } from './view-scope.js'
import type { PolicyState, StoredResource } from './store.js'

/** Intended deletions remembered for snapshots (and, per scope, resources moved out of it). */
export const RECENT_DELETIONS = 1000

export class DeletionLog {
  /** key → the resource's last value, oldest first, at most `limit`: deleted on purpose and absent now. */
  private readonly recent = new Map<string, object>()
  /** Removed on purpose since the last push. */
  private window = new Map<string, object>()
  /** What the last push removed on purpose (the deltas' list). */
  private lastWindow = new Map<string, object>()
  /** The policy as of the last event seen, by key. */
  private seen = new Map<string, object>()
  /** The policy as last pushed, by key. */
  private current = new Map<string, object>()
  /** Earlier values of resources still in the policy that moved to another service (deletion-seed.ts). */
  private readonly former = new Map<string, object[]>()
  /** Per scope: resources still in the policy that left its view, oldest first; and those of the last push. */
  private readonly movedOut = new Map<string, Set<string>>()
  private lastMoved = new Map<string, string[]>()

  constructor(private readonly limit = RECENT_DELETIONS) {}

  /** The policy the hub starts from: nothing in it is a deletion. */
  reset(state: PolicyState): void {
    this.seen = byKey(state.resources)
    this.current = this.seen
  }

  /** What the store's history says was deleted before this start: older than anything noted since. */
  seed(s: DeletionSeed): void {
    const merged = new Map<string, object>()
    for (const [k, v] of s.deleted) if (!this.current.has(k) && !this.seen.has(k)) merged.set(k, v)
    for (const [k, v] of this.recent) {
      merged.delete(k)
      merged.set(k, v)
    }
    this.recent.clear()
    for (const [k, v] of merged) this.recent.set(k, v)
    trim(this.recent, this.limit)
    for (const [k, values] of s.former) if (!this.former.has(k) && this.current.has(k)) this.former.set(k, values)
  }

  /** A scope's first stream: what moved out of its view before (while no stream of it was here). */
  scopeAdded(name: string, scope: ViewScope): void {
    for (const [k, values] of this.former) {
      const v = this.current.get(k)
      if (v === undefined || visible(v, scope) || !values.some((f) => visible(f, scope))) continue
      let set = this.movedOut.get(name)
      if (!set) this.movedOut.set(name, (set = new Set()))
      set.add(k)
      trim(set, this.limit)
    }
  }

  /** A policy event: what it removed is intended when a DELETE or a rollback wrote it. */
  note(state: PolicyState): void {
    const now = byKey(state.resources)
    if (state.action === 'delete' || state.action === 'rollback') {
      for (const [k, v] of this.seen) if (!now.has(k)) this.window.set(k, v)
    }
    for (const k of now.keys()) this.window.delete(k)
    this.seen = now
  }

  /**
   * A new version goes out with policy `after` (the pushed one was `before`): the window's
   * deletions become recent ones, and per scope what left its view while staying in the policy.
   */
  pushed(before: readonly StoredResource[], after: readonly StoredResource[], scopes: ReadonlyMap<string, ViewScope>): void {
    for (const [k, v] of this.window) {
      this.recent.delete(k)
      this.recent.set(k, v)
    }
    const now = byKey(after)
    this.current = now
    for (const k of now.keys()) this.recent.delete(k)
    for (const k of this.former.keys()) if (!now.has(k)) this.former.delete(k)
    trim(this.recent, this.limit)
    this.lastWindow = this.window
    this.window = new Map()
    this.lastMoved = new Map()
    // Back in a scope's view (added again, or its selector changed back): no longer gone for it.
    for (const [name, set] of this.movedOut) {
      const s = scopes.get(name)
      for (const k of set) {
        const v = now.get(k)
        if (v !== undefined && visible(v, s)) set.delete(k)
      }
    }
    // Only an inbound resource whose service selector changed can leave (or join) a scope: its
    // namespace is part of its key.
    for (const b of before) {
      const a = now.get(keyOf(b))
      if (a === undefined || selector(a) === selector(b.value)) continue
      const k = keyOf(b)
      addFormer(this.former, k, b.value, this.limit)
      for (const [name, s] of scopes) {
        const was = visible(b.value, s)
        const is = visible(a, s)
        if (was === is) continue
        let set = this.movedOut.get(name)
        if (is) {
          set?.delete(k)
          continue
        }
        if (!set) this.movedOut.set(name, (set = new Set()))
        set.delete(k)
        set.add(k)
        trim(set, this.limit)
        let moved = this.lastMoved.get(name)
        if (!moved) this.lastMoved.set(name, (moved = []))
        moved.push(k)
      }
    }
  }

  /** A delta's list for `scope` (undefined: unscoped, sees everything). */
  forDelta(name: string, scope: ViewScope | undefined): string[] {
    return [...visibleKeys(this.lastWindow, scope), ...(this.lastMoved.get(name) ?? [])]
  }

  /** A snapshot's list for `scope`: the recent deletions it could see, and what left its view. */
  forSnapshot(name: string, scope: ViewScope | undefined): string[] {
    return [...visibleKeys(this.recent, scope), ...(this.movedOut.get(name) ?? [])]
  }
}

/** The `deleted` field of a message when there is anything to list (an empty list is left out). */
export function withDeleted(keys: string[]): { deleted?: string[] } {
  return keys.length > 0 ? { deleted: keys } : {}
}

function visible(v: object, scope: ViewScope | undefined): boolean {
  return scope === undefined || scopeResources([v], scope).length > 0
}

function visibleKeys(m: ReadonlyMap<string, object>, scope: ViewScope | undefined): string[] {
  const out: string[] = []
  for (const [k, v] of m) if (visible(v, scope)) out.push(k)
  return out
}

function trim(c: Map<string, unknown> | Set<string>, limit: number): void {
  for (const k of c.keys()) {
    if (c.size <= limit) return
    c.delete(k)
  }
}
