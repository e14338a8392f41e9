// The revoked identities an instance enforces (RELIABILITY M8): IdentityRevocation resources from
// the daemon's view, looked up by a peer's SPIFFE ID on every mTLS handshake (both sides) and when
// the list changes (open connections of a newly revoked identity are ended). A lookup is one map
// read; the list is rebuilt once per policy version, never per connection.

/** One revocation as the policy holds it (config's RevocationSettings has this shape). */
export interface Revocation {
  spiffeId: string
  reason: string
  /** ISO time the daemon stored it. */
  revokedAt?: string
}

export class RevocationList {
  static readonly EMPTY = new RevocationList([])
  private readonly byId: ReadonlyMap<string, Revocation>

  constructor(list: readonly Revocation[]) {
    this.byId = new Map(list.map((r) => [r.spiffeId, r]))
  }

  get size(): number {
    return this.byId.size
  }

  /** The revocation of `spiffeId` (canonical form, as a verified SVID gives it), if any. */
  find(spiffeId: string | undefined): Revocation | undefined {
    return spiffeId === undefined ? undefined : this.byId.get(spiffeId)
  }

  /** The IDs revoked here and not in `before`: whose open connections must end now. */
  addedSince(before: RevocationList): string[] {
    return [...this.byId.keys()].filter((id) => !before.byId.has(id))
  }

  /** Same IDs (a reason edited in place changes no connection). */
  sameIds(other: RevocationList): boolean {
    return this.byId.size === other.byId.size && [...this.byId.keys()].every((id) => other.byId.has(id))
  }
}

/** The words every refusal uses, so a log line, an error and a metric's log point at one cause. */
export function revokedMessage(r: Revocation): string {
  return `${r.spiffeId} is revoked (reason: ${r.reason}${r.revokedAt !== undefined ? `; since ${r.revokedAt}` : ''})`
}
