// Letting an instance's lease run out even when the store fails to (an etcd deadline, a full disk):
// a failed detach is retried with backoff, each retry asking only for what is left of the lease,
// and once the lease would have ended the record is deleted here instead (retried until it goes).
// A stream that holds the instance again cancels all of it. Every store call runs under the
// registry's per-id lock.
import type { Logger } from '../util/logger.js'
import type { Store } from './store.js'

const RETRY_BASE_MS = 100
const RETRY_MAX_MS = 5_000

interface Pending {
  /** When the lease ends (epoch ms). */
  deadline: number
  attempt: number
  timer?: NodeJS.Timeout
}

export type LockedRun = <T>(id: string, task: () => Promise<T>) => Promise<T>

export class LeaseReleases {
  private readonly pending = new Map<string, Pending>()
  private closed = false

  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly locked: LockedRun,
    /** A stream holds the instance again (or the daemon is closing): stop. */
    private readonly held: (id: string) => boolean,
  ) {}

  /** The instance is not held any more: its lease runs out in ttlMs (call under its lock). */
  async release(id: string): Promise<void> {
    const deadline = this.pending.get(id)?.deadline ?? Date.now() + this.ttlMs
    try {
      await this.store.detachInstance(id, Math.max(1, deadline - Date.now()))
      this.cancel(id)
    } catch (err) {
      this.logger.warn(`lease of instance ${id}: the store could not start its expiry (${(err as Error).message}); retrying, and deleting it at ${new Date(deadline).toISOString()} if the store keeps failing`)
      this.schedule(id, deadline)
    }
  }

  /** The lease is over now (the instance was silent for a whole lease): delete it (under its lock). */
  async expire(id: string): Promise<void> {
    try {
      await this.store.deleteInstance(id)
      this.cancel(id)
    } catch (err) {
      this.logger.warn(`lease of instance ${id}: could not delete it after its lease ended (${(err as Error).message}); retrying`)
      this.schedule(id, Date.now())
    }
  }

  cancel(id: string): void {
    const p = this.pending.get(id)
    if (!p) return
    clearTimeout(p.timer)
    this.pending.delete(id)
  }

  close(): void {
    this.closed = true
    for (const p of this.pending.values()) clearTimeout(p.timer)
    this.pending.clear()
  }

  private schedule(id: string, deadline: number): void {
    if (this.closed) return
    let p = this.pending.get(id)
    if (!p) this.pending.set(id, (p = { deadline, attempt: 0 }))
    clearTimeout(p.timer)
    const backoff = Math.min(RETRY_BASE_MS * 2 ** p.attempt++, RETRY_MAX_MS)
    const left = p.deadline - Date.now()
    // Before the deadline, never sleep past it (the delete must happen on time).
    const delay = Math.max(10, left > 0 ? Math.min(backoff, left) : backoff)
    const entry = p
    p.timer = setTimeout(() => {
      void this.locked(id, () => this.retry(id, entry)).catch(() => {})
    }, delay)
    p.timer.unref()
  }

  private async retry(id: string, p: Pending): Promise<void> {
    if (this.closed || this.pending.get(id) !== p) return
    if (this.held(id)) return this.cancel(id)
    const left = p.deadline - Date.now()
    try {
      if (left > 0) await this.store.detachInstance(id, left)
      else {
        await this.store.deleteInstance(id)
        this.logger.warn(`lease of instance ${id} ended while the store could not start its expiry: deleted it`)
      }
      this.cancel(id)
    } catch {
      this.schedule(id, p.deadline)
    }
  }
}
