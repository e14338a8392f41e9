// The instance registry's rules on top of the store: registration, serving updates, deregistration
// and the lease. The watch stream is the lease: while at least one stream of an instance is open on
// this daemon the store holds it; when the last one closes it lives leaseTtl more. A registration
// with no stream open gets the same leaseTtl, so one never followed by a watch expires too.
// Operations on one id run one at a time (a stream opening while another closes must not leave
// the instance detached under an open stream).
import { randomBytes } from 'node:crypto'
import type { RegisterRequest, RegisterResponse } from '../control/protocol.js'
import { hashToken, newInstanceToken, notFoundInstance, sameHash } from './auth.js'
import { HttpError } from './http-error.js'
import { KeyedSerial } from './serial.js'
import type { InstanceRecord, JoinToken, Store } from './store.js'

export class Registry {
  private readonly locks = new KeyedSerial()
  /** Open watch streams per instance on this daemon. */
  private readonly open = new Map<string, number>()
  private closing = false

  constructor(private readonly store: Store, readonly leaseTtlMs: number) {}

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
    return this.locks.run(id, () => this.store.deleteInstance(id))
  }

  /** A watch stream opens: the instance is held (undefined when the id is unknown). */
  streamOpened(id: string): Promise<InstanceRecord | undefined> {
    return this.locks.run(id, async () => {
      const rec = await this.store.getInstance(id)
      if (!rec) return undefined
      this.open.set(id, (this.open.get(id) ?? 0) + 1)
      await this.store.attachInstance(rec)
      return rec
    })
  }

  /** A watch stream closed: after the last one, the lease runs out in leaseTtl. */
  streamClosed(id: string): Promise<void> {
    return this.locks.run(id, async () => {
      const n = (this.open.get(id) ?? 1) - 1
      if (n > 0) return void this.open.set(id, n)
      this.open.delete(id)
      if (this.closing) return
      if (await this.store.getInstance(id)) await this.store.detachInstance(id, this.leaseTtlMs)
    })
  }

  /** The daemon is closing: streams ending now must not touch the store being closed. */
  close(): void {
    this.closing = true
  }

  private async put(rec: InstanceRecord): Promise<void> {
    await this.store.attachInstance(rec)
    if (!this.connected(rec.id)) await this.store.detachInstance(rec.id, this.leaseTtlMs)
  }
}
