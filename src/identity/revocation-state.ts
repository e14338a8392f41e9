// The revocations an instance enforces (RELIABILITY M8), as MeshIdentity keeps them: the list of
// the policy in use (rebuilt once per version, never per connection), who to tell when it changes,
// and the refusals it gives, each naming the revoked ID and the reason.
import type { MeshPolicy, ServiceSettings } from '../config/types.js'
import { WeftError } from '../errors/index.js'
import type { Logger } from '../util/logger.js'
import { RevocationList, revokedMessage } from './revocation.js'
import { workloadId } from './spiffe-id.js'

export class RevocationState {
  /** Told when the revoked identities change (open connections of newly revoked ones are ended). */
  private readonly listeners = new Set<() => void>()
  /** The revocations in force, and the policy they were read from. */
  private list = RevocationList.EMPTY
  private from: MeshPolicy | undefined

  constructor(
    private readonly policy: () => MeshPolicy | undefined,
    /** Under a daemon: without one there is no mTLS to refuse. */
    private readonly controlled: boolean,
    private readonly logger: Logger,
    private readonly service: string,
  ) {}

  /** `listener` is called when the revoked identities change, after the new list is in force; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The revocations of the policy in use. */
  current(): RevocationList {
    const policy = this.policy()
    if (policy !== this.from) {
      this.from = policy
      this.list = this.controlled && policy && policy.revocations.length > 0 ? new RevocationList(policy.revocations) : RevocationList.EMPTY
    }
    return this.list
  }

  /**
   * A new policy is in use: logs what was revoked and lifted, calls `ownLifted` when `ownId` (this
   * instance's identity) was lifted, then tells the listeners. Nothing when the revoked IDs are the same.
   */
  applied(ownId: string | undefined, ownLifted: () => void): void {
    const before = this.list
    const now = this.current()
    if (now.sameIds(before)) return
    for (const id of before.addedSince(now)) {
      this.logger.info(`identity: the revocation of ${id} was lifted: mTLS with it is allowed again`)
      if (id === ownId) ownLifted()
    }
    for (const id of now.addedSince(before)) this.logger.warn(`identity: ${revokedMessage(now.find(id)!)}: ${this.service} ends its open mTLS connections with it and refuses new ones`)
    for (const l of this.listeners) l()
  }

  /** Why a connection with peer `spiffeId` must not be (made or kept); undefined when it may. */
  peer(spiffeId: string | undefined): string | undefined {
    const r = this.current().find(spiffeId)
    return r ? revokedMessage(r) : undefined
  }

  /**
   * The refusal of an outbound mTLS connection to `service` when this instance's own identity
   * (`ownId`) or the destination's is revoked: a WEFT_ERR_UNAUTHENTICATED naming the revocation and
   * its reason, before any handshake (the server would refuse it anyway, with no reason a client can read).
   */
  outbound(service: ServiceSettings, trustDomain: string, ownId: string | undefined): WeftError | undefined {
    const list = this.current()
    if (list.size === 0) return undefined
    const own = list.find(ownId)
    const dest = own ?? list.find(workloadId(trustDomain, service.namespace, service.name).toString())
    if (!dest) return undefined
    const who = own ? `this instance's identity ${revokedMessage(own)}` : `the destination's identity ${revokedMessage(dest)}`
    return new WeftError('WEFT_ERR_UNAUTHENTICATED', `${service.name}: mTLS refused: ${who}; lift it with weft unrevoke ${dest.spiffeId}`, { details: { revoked: dest.spiffeId, reason: dest.reason } })
  }
}
