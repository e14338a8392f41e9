// The etcd store's own lease and the instances held on it (see etcd-store.ts). Kept alive while
// the process lives; if it is lost (etcd unreachable longer than the TTL) a new one is granted and
// the held instances are put back on it. Detach and delete wait while that happens, so a record
// let go meanwhile is not put back.
import type { Etcd3, IKeyValue, Lease } from 'etcd3'
import type { InstanceRecord } from '../../src/daemon/store.js'
import type { Logger } from '../../src/util/logger.js'
import { bounded, sleep } from './timing.js'

export interface OwnLeaseDeps {
  /** The store's client (opening or open). */
  client(): Etcd3
  isOpen(): boolean
  ttlS: number
  timeoutMs: number
  logger: Logger
  instanceKey(id: string): string
  getKv(key: string): Promise<IKeyValue | undefined>
}

export class OwnLease {
  private lease?: Lease
  private leaseId?: string
  private ready?: Promise<string>
  private regranting = false
  /** Every lease this store granted for itself (a record on one of them is held here). */
  private readonly ownIds = new Set<string>()
  /** The instances this daemon holds (attached and not detached or deleted since). */
  readonly held = new Map<string, InstanceRecord>()

  constructor(private readonly d: OwnLeaseDeps) {}

  /** The first grant, at open. */
  async grant(): Promise<void> {
    const { lease, id } = this.newLease()
    this.lease = lease
    this.leaseId = await id
    this.ready = Promise.resolve(this.leaseId)
    this.watch(lease, this.leaseId)
  }

  /** Whether `leaseId` is (or was) one of this store's own leases. */
  owns(leaseId: string): boolean {
    return this.ownIds.has(leaseId)
  }

  /** The own lease's id, waiting (bounded) while a lost lease is being replaced. */
  id(): Promise<string> {
    if (this.leaseId !== undefined && !this.regranting) return Promise.resolve(this.leaseId)
    return bounded(this.ready!, this.d.timeoutMs).catch((err: Error) => {
      throw new Error(`etcd store: no lease to hold instances (${err.message})`)
    })
  }

  /**
   * While a lost lease is being replaced, detach and delete wait for it: the replacement puts the
   * held instances back, and must not put back one that was let go meanwhile.
   */
  async settled(): Promise<void> {
    if (this.regranting) await bounded(this.ready!, this.d.timeoutMs).catch(() => {})
  }

  lost(id: string, err: Error): void {
    if (!this.d.isOpen() || this.regranting || id !== this.leaseId) return
    this.regranting = true
    this.d.logger.warn(`etcd store: lease lost (${err.message}); granting a new one for ${this.held.size} attached instance(s)`)
    this.lease?.release()
    this.ready = this.regrant()
    this.ready.catch(() => {})
  }

  /** Stops keeping the lease alive: its instances expire with it (another daemon may hold them first). */
  release(): void {
    this.lease?.release()
  }

  /** Ends the lease now: its instances go at once. */
  revoke(): Promise<void> {
    return this.lease!.revoke()
  }

  private newLease(): { lease: Lease; id: Promise<string> } {
    const lease = this.d.client().lease(this.d.ttlS)
    const id = lease.grant().then((i) => {
      this.ownIds.add(i)
      return i
    })
    id.catch(() => {})
    return { lease, id }
  }

  private watch(lease: Lease, id: string): void {
    lease.on('lost', (err) => this.lost(id, err))
  }

  private async regrant(): Promise<string> {
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      if (!this.d.isOpen()) throw new Error('etcd store is closed')
      const { lease, id } = this.newLease()
      try {
        const newId = await id
        this.lease = lease
        this.leaseId = newId
        await this.reattachAll(newId)
        this.regranting = false
        this.watch(lease, newId)
        this.d.logger.info('etcd store: new lease granted; attached instances put back')
        return newId
      } catch (err) {
        lease.release()
        this.d.logger.warn(`etcd store: could not replace the lease (${(err as Error).message}); retrying`)
        await sleep(delay)
      }
    }
  }

  /**
   * Puts the held instances on the new lease: those still on an earlier lease of this store and
   * those its expiry deleted. One on another lease was attached (or detached) by another daemon
   * meanwhile: it is not held here any more.
   */
  private async reattachAll(newId: string): Promise<void> {
    const client = this.d.client()
    for (const [id, rec] of [...this.held]) {
      if (this.held.get(id) !== rec) continue
      const key = this.d.instanceKey(id)
      const kv = await this.d.getKv(key)
      if (kv && !this.ownIds.has(kv.lease)) {
        this.held.delete(id)
        continue
      }
      await client.if(key, 'Mod', '==', kv?.mod_revision ?? 0).then(client.put(key).value(JSON.stringify(rec)).lease(newId)).commit()
    }
  }
}
