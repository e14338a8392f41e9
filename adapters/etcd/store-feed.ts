// The etcd store's view of its prefix: one consistent read at open, then a watch from the next
// revision that reports every change as StoreEvents (its own writes included). When etcd cancels
// the watch (it cannot replay, e.g. after a compaction) the state is read again and only what
// differs from what was reported goes out. revision() is the newest revision reached this way.
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3'
import type { InstanceRecord, PolicyState, StoreEvent } from '../../src/daemon/store.js'
import type { Logger } from '../../src/util/logger.js'
import { decodeInstance, policyValue, type Keys } from './keys.js'
import { bounded, sleep } from './timing.js'
import { decodeBatch } from './watch-batch.js'

export interface StoreFeedDeps {
  client(): Etcd3
  isOpen(): boolean
  isClosed(): boolean
  keys: Keys
  logger: Logger
}

export class StoreFeed {
  /** The newest revision reported (or read at start). */
  revision = 0
  private watcher?: Watcher
  /** Raw values of the instances reported so far (see watch-batch.ts). */
  private readonly known = new Map<string, string>()
  private policyVersion = 0
  private readonly listeners: ((e: StoreEvent) => void)[] = []

  constructor(private readonly d: StoreFeedDeps) {}

  onEvent(listener: (e: StoreEvent) => void): void {
    this.listeners.push(listener)
  }

  /** Reads the state and watches on from it (at open: nothing is reported for what is read). */
  async start(): Promise<void> {
    const snap = await this.readState()
    this.revision = snap.revision
    this.policyVersion = snap.policy?.version ?? 0
    for (const [id, raw] of snap.instances) this.known.set(id, raw)
    await this.startWatch(snap.revision + 1)
  }

  async stop(): Promise<void> {
    const watcher = this.watcher
    this.watcher = undefined
    if (watcher) await bounded(watcher.cancel(), 1000).catch(() => {})
  }

  /** One consistent read of the policy and the registry (at one revision). */
  private async readState(): Promise<{ revision: number; policy?: PolicyState; instances: Map<string, string> }> {
    const client = this.d.client()
    const ops = await Promise.all([client.get(this.d.keys.policy).op(), client.getAll().prefix(this.d.keys.instancesPrefix).op()])
    const res = await client.kv.txn({ success: ops })
    const cur = res.responses[0]?.response_range?.kvs[0]
    const value = cur ? policyValue(cur) : undefined
    const policy = cur && value ? { version: Number(cur.mod_revision), resources: value.resources, action: value.action } : undefined
    const instances = new Map<string, string>()
    for (const kv of res.responses[1]?.response_range?.kvs ?? []) {
      const id = kv.key.toString().slice(this.d.keys.instancesPrefix.length)
      if (decodeInstance(kv.value, id)) instances.set(id, kv.value.toString())
    }
    return { revision: Number(res.header.revision), policy, instances }
  }

  private async startWatch(fromRevision: number): Promise<void> {
    const w = await this.d.client().watch().prefix(this.d.keys.prefix).startRevision(String(fromRevision)).create()
    let down = false
    w.on('data', (res: IWatchResponse) => this.onWatchData(res))
    w.on('disconnected', (err) => {
      if (!this.d.isOpen() || down) return
      down = true
      this.d.logger.warn(`etcd store: watch disconnected (${err.message}); reconnecting`)
    })
    w.on('connected', () => {
      if (!down) return
      down = false
      this.d.logger.info('etcd store: watch reconnected')
    })
    w.on('error', (err) => this.onWatchCanceled(w, err))
    this.watcher = w
  }

  private onWatchData(res: IWatchResponse): void {
    if (this.d.isClosed() || res.events.length === 0) return
    const batch = decodeBatch(this.d.keys, res.events, { known: this.known }, this.d.logger)
    for (const e of batch.events) {
      if (e.type === 'policy') this.policyVersion = e.state.version
      this.revision = Math.max(this.revision, e.revision)
      this.emit(e)
    }
    this.revision = Math.max(this.revision, batch.maxRevision)
  }

  /**
   * etcd canceled the watch (it cannot replay from where it was, e.g. after a compaction): read the
   * state again, report what differs from what was reported, and watch on from there.
   */
  private onWatchCanceled(w: Watcher, err: Error): void {
    if (!this.d.isOpen() || w !== this.watcher) return
    this.watcher = undefined
    this.d.logger.warn(`etcd store: watch canceled (${err.message}); reading the state again`)
    void (async () => {
      for (let delay = 250; this.d.isOpen(); delay = Math.min(delay * 2, 5000)) {
        try {
          const snap = await this.readState()
          this.resync(snap)
          await this.startWatch(snap.revision + 1)
          return
        } catch (e) {
          this.d.logger.warn(`etcd store: resync failed (${(e as Error).message}); retrying`)
          await sleep(delay)
        }
      }
    })()
  }

  private resync(snap: { revision: number; policy?: PolicyState; instances: Map<string, string> }): void {
    const revision = Math.max(snap.revision, this.revision)
    const policy = snap.policy ?? { version: 0, resources: [] }
    const put: InstanceRecord[] = []
    const deleted: string[] = []
    for (const [id, raw] of snap.instances) {
      if (this.known.get(id) === raw) continue
      this.known.set(id, raw)
      put.push(decodeInstance(raw, id)!)
    }
    for (const id of [...this.known.keys()]) {
      if (snap.instances.has(id)) continue
      this.known.delete(id)
      deleted.push(id)
    }
    this.revision = revision
    if (policy.version !== this.policyVersion) {
      this.policyVersion = policy.version
      this.emit({ type: 'policy', revision, state: policy })
    }
    if (put.length > 0 || deleted.length > 0) this.emit({ type: 'instances', revision, put, deleted })
  }

  private emit(e: StoreEvent): void {
    for (const l of this.listeners) {
      try {
        l(e)
      } catch (err) {
        this.d.logger.error(`etcd store: event listener failed: ${(err as Error).message}`)
      }
    }
  }
}
