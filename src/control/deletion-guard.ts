// RELIABILITY F5 (gRFC A88's resource deletion): an inbound policy that vanishes from the daemon's
// view without being deleted on purpose never widens access. The daemon lists what it removed on
// purpose in each view (`deleted`: src/daemon/deletions.ts). An AuthorizationPolicy or
// RequestAuthentication this instance applied that is missing from a view and not listed there
// (a daemon bug, a store written by hand, a truncated view) is KEPT: merged into this view and the
// next ones until the daemon's view has it again or lists it as deleted. Each keep is an ambient
// error (logged once per key, weft_config_rejected_total{source="deletion"}); with
// failOnDataErrors the mesh refuses inbound requests instead (control-mode.ts).
//
// Only these kinds: keeping one can only restrict (an ALLOW or DENY more, a JWT rule more, an
// IdentityRevocation more — a revocation dropped by mistake must not let a revoked identity back
// in; `weft unrevoke` is a DELETE, listed, so it is honored; an SMI TrafficTarget is an ALLOW
// policy — kept without the HTTPRouteGroup it names, the view does not validate and is NACKed, so
// the last good one, which has both, keeps serving).
// PeerAuthentication and MeshConfig are NOT kept: a kept PERMISSIVE mode (or a MeshConfig relaxing
// the mesh-wide default) would be less strict than what the daemon serves now.
import type { ControlView } from './views.js'
import { resourceKey } from './resource-key.js'

const GUARDED = new Set(['AuthorizationPolicy', 'RequestAuthentication', 'IdentityRevocation', 'TrafficTarget'])

/** What one view runs as, given what ran before; committed once it applied. */
export interface GuardPlan {
  /** The view's resources, plus the kept ones. */
  resources: object[]
  /** Kept: missing from the view without being listed as deleted (key → the value last applied). */
  kept: Map<string, object>
  /** The guarded resources in force with this plan. */
  guarded: Map<string, object>
}

export class DeletionGuard {
  /** The guarded resources of the last view applied, kept ones included. */
  private previous = new Map<string, object>()
  /** Keys kept as of the last view applied (each logged and counted once while kept). */
  private keeping = new Set<string>()

  /** What `view` runs as: pure, so a view that does not apply changes nothing. */
  plan(view: ControlView): GuardPlan {
    const guarded = new Map<string, object>()
    for (const r of view.resources) {
      const kind = (r as { kind?: unknown }).kind
      if (typeof kind !== 'string' || !GUARDED.has(kind)) continue
      const k = resourceKey(r)
      if (k !== undefined) guarded.set(k, r)
    }
    const deleted = new Set(view.deleted ?? [])
    const kept = new Map<string, object>()
    for (const [k, r] of this.previous) {
      if (guarded.has(k) || deleted.has(k)) continue
      kept.set(k, r)
      guarded.set(k, r)
    }
    return { resources: kept.size === 0 ? view.resources : [...view.resources, ...kept.values()], kept, guarded }
  }

  /** The keys kept as of the last view applied (the ACK reports them: `weft status`). */
  keptKeys(): string[] {
    return [...this.keeping]
  }

  /**
   * `plan` applied: the keys it newly keeps (to log and count) and those no longer kept (the daemon's
   * view has them again, or deleted them).
   */
  commit(plan: GuardPlan): { newlyKept: string[]; released: string[] } {
    const newlyKept = [...plan.kept.keys()].filter((k) => !this.keeping.has(k))
    const released = [...this.keeping].filter((k) => !plan.kept.has(k))
    this.previous = plan.guarded
    this.keeping = new Set(plan.kept.keys())
    return { newlyKept, released }
  }
}

/** The ambient error for a kept resource: what it is, and that the daemon dropped it without a delete. */
export function keptMessage(key: string, version: number): string {
  return `control: the daemon's view version ${version} dropped ${key} without deleting it (no DELETE or rollback lists it): a daemon or store fault, or a view that lost data; keeping the ${key} last applied, so access does not widen, until the daemon's view has it again or deletes it (RELIABILITY F5)`
}
