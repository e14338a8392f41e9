// The instance registry's rules on top of the store: registration, serving updates, deregistration
// and the lease. The watch stream is the lease: while at least one stream of an instance is open on
// this daemon the store holds it; when the last one closes it lives leaseTtl more. A registration
// with no stream open gets the same leaseTtl, so one never followed by a watch expires too.
// Operations on one id run one at a time (a stream opening while another closes must not leave
// the instance detached under an open stream).
//
// A stream counts as open only once the store holds the instance (a failed attach counts nothing),
// and letting a lease run out never depends on one store call succeeding: a failed detach is
// retried, and if the store still fails when the lease would have ended, the record is deleted.
import { randomBytes } from 'node:crypto'
import type { RegisterRequest, RegisterResponse } from '../control/protocol.js'
import type { Logger } from '../util/logger.js'
import { hashToken, newInstanceToken, notFoundInstance, sameHash } from './auth.js'
import { HttpError } from './http-error.js'
import { LeaseReleases } from './lease-releases.js'
import { KeyedSerial } from './serial.js'
import type { InstanceRecord, JoinToken, Store } from './store.js'

export class Registry {
  private readonly locks = new KeyedSerial()
  /** Open watch streams per instance on this daemon. */
  private readonly open = new Map<string, number>()
  private readonly releases: LeaseReleases
  private closing = false
  /** This daemon's URL, recorded in the records it holds (heldBy); set once it listens. */
  holder: string | undefined

  constructor(private readonly store: Store, readonly leaseTtlMs: number, private readonly logger: Logger) {
    this.releases = new LeaseReleases(store, leaseTtlMs, logger, (id, task) => this.locks.run(id, task), (id) => this.connected(id) || this.closing)
  }

  connected(id: string): boolean {
    return (this.open.get(id) ?? 0) > 0
  }

  /** POST /v1/register with a join token already checked for the service. */
  register(req: RegisterRequest, join: { hash: string; join: JoinToken }): Promise<RegisterResponse> {
    const id = req.id ?? `${req.service}-${randomBytes(6).toString('hex')}`
    return this.locks.run(id, async () => {
      const existing = await this.store.getInstance(id)
      // Keeping an id is for the instance that has it: another join token cannot take it over.
      if (existing && !sameHash(existing.joinHash, join.hash)) {
        throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `instance id "${id}" is registered with another join token`)
      }
      const token = newInstanceToken(id)
      const rec: InstanceRecord = {
        id,
        service: req.service,
        namespace: req.namespace ?? join.join.namespace ?? 'default',
        ...(req.address !== undefined && req.port !== undefined ? { address: req.address, port: req.port } : {}),
        protocol: req.protocol ?? 'http',
        labels: req.labels ?? {},
        ...(req.locality !== undefined ? { locality: req.locality } : {}),
        tokenHash: hashToken(token),
        joinHash: join.hash,
        registeredAt: new Date().toISOString(),
      }
      await this.put(rec)
      return { id, token, leaseTtlMs: this.leaseTtlMs }
    })
  }

  /** PUT /v1/instances/:id: the instance serves at address:port now. */
  update(id: string, serving: { address: string; port: number; protocol?: 'http' | 'grpc' }): Promise<InstanceRecord> {
    return this.locks.run(id, async () => {
      const rec = await this.store.getInstance(id)
      if (!rec) throw notFoundInstance(id)
      const next: InstanceRecord = { ...rec, address: serving.address, port: serving.port, protocol: serving.protocol ?? rec.protocol }
      await this.put(next)
      return next
    })
  }

  remove(id: string): Promise<void> {
    return this.locks.run(id, async () => {
      this.releases.cancel(id)
      await this.store.deleteInstance(id)
    })
  }

  /** A watch stream opens: the instance is held (undefined when the id is unknown). */
  streamOpened(id: string): Promise<InstanceRecord | undefined> {
    return this.locks.run(id, async () => {
      const rec = await this.store.getInstance(id)
      if (!rec) return undefined
      const held = this.held(rec)
      try {
        await this.store.attachInstance(held)
      } catch (err) {
        // Not held, so not counted; the store may have stopped its expiry before failing.
        if (!this.connected(id)) await this.releases.release(id)
        throw err
      }
      this.releases.cancel(id)
      this.open.set(id, (this.open.get(id) ?? 0) + 1)
      return held
    })
  }

  /**
   * A watch stream closed: after the last one, the lease runs out in leaseTtl. `expired`: the hub
   * dropped it because the instance was silent for a whole lease: its lease is over now.
   */
  streamClosed(id: string, expired = false): Promise<void> {
    return this.locks.run(id, async () => {
      const n = (this.open.get(id) ?? 1) - 1
      if (n > 0) return void this.open.set(id, n)
      this.open.delete(id)
      if (this.closing) return
      if (expired) await this.releases.expire(id)
      else await this.releases.release(id)
    })
  }

  /** The daemon is closing: streams ending now must not touch the store being closed. */
  close(): void {
    this.closing = true
    this.releases.close()
  }

  /** The record as this daemon holds it: heldBy names it, for daemons sharing the store. */
  private held(rec: InstanceRecord): InstanceRecord {
    if (this.holder === undefined) return rec
    return { ...rec, heldBy: this.holder }
  }

  private async put(rec: InstanceRecord): Promise<void> {
    const connected = this.connected(rec.id)
    const next = connected ? this.held(rec) : withoutHolder(rec)
    try {
      await this.store.attachInstance(next)
    } catch (err) {
      if (!this.connected(rec.id)) await this.releases.release(rec.id)
      throw err
    }
    if (!this.connected(rec.id)) await this.releases.release(rec.id)
  }
}

function withoutHolder(rec: InstanceRecord): InstanceRecord {
  const { heldBy: _, ...rest } = rec
  return rest
}
