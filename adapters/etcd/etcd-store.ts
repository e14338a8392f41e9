// The daemon's store on etcd (`weft daemon --etcd URL,…`): several daemons share one policy and
// one registry. Key layout in keys.ts. Every daemon watches the whole prefix and reports what it
// sees through onEvent — its own writes included, so the daemon has one path for changes.
//
// - Versions are etcd revisions. The policy's version is its key's mod revision; writePolicy is a
//   transaction on that mod revision (0: no policy yet) that also archives the version it replaces
//   under history/<that version>, so a policy change and its history entry land together. The
//   current version's history entry lives in the policy value itself.
// - revision() is the newest revision reached by the watch (or the read at open), never one taken
//   from a write's response: a number the daemon tells an instance then always names a state whose
//   changes the daemon has already been given.
// - Instances a daemon holds (their watch stream is open on it) sit on the daemon's own lease,
//   kept alive while the process lives; if the lease is lost (etcd unreachable longer than the
//   TTL) a new one is granted and the held instances put back on it. detachInstance moves a held
//   record to a single-use lease of the given TTL with no keepalive: it expires unless some daemon
//   attaches it again. A daemon that dies stops its keepalive and its instances expire with its
//   lease.
// - The identity documents (the CA, the JWT-SVID key) are in shared-docs.ts.
import type { Etcd3, IKeyValue, IRequestOp, IWatchResponse, Lease, Watcher } from 'etcd3'
import { randomUUID } from 'node:crypto'
import { invalidArg } from '../../src/errors/index.js'
import {
  ConflictError,
  type HistoryEntry,
  type InstanceRecord,
  type JoinToken,
  type PolicyState,
  type SharedDoc,
  type SharedDocName,
  type Store,
  type StoreEvent,
  type StoredResource,
} from '../../src/daemon/store.js'
import { silentLogger, type Logger } from '../../src/util/logger.js'
import { decodeHistory, decodeInstance, decodeJoinToken, decodePolicy, keysFor, type HistoryValue, type Keys, type PolicyValue } from './keys.js'
import { loadEtcd3, type Etcd3Module } from './load.js'
import { EtcdSharedDocs } from './shared-docs.js'
import { decodeBatch } from './watch-batch.js'

/** History entries kept, the current version's included (older ones are deleted). */
export const HISTORY_KEPT = 100

export interface EtcdStoreOptions {
  /** etcd client URLs, e.g. ["http://10.0.0.1:2379"]. */
  endpoints: string[]
  /** Every key starts with it; must end with "/". Default "/weft/". */
  prefix?: string
  /**
   * TTL of this store's own lease, which holds the instances attached here (default 10 s). etcd
   * counts leases in whole seconds and raises a TTL below its minimum (2 s with default flags).
   */
  leaseTtlMs?: number
  /** Deadline of each etcd request (default 5 s); streams (watch, keepalive) have none. */
  requestTimeoutMs?: number
  logger?: Logger
}

export interface EtcdStoreCloseOptions {
  /**
   * Revoke this store's lease: the instances attached here vanish at once instead of after the
   * TTL. Off by default, so instances of a restarting daemon can move to another within the TTL.
   */
  revokeLease?: boolean
}

export function createEtcdStore(opts: EtcdStoreOptions): EtcdStore {
  return new EtcdStore(opts)
}

type State = 'new' | 'opening' | 'open' | 'closed'

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export class EtcdStore implements Store {
  readonly keys: Keys
  private readonly etcd: Etcd3Module
  private readonly endpoints: string[]
  private readonly leaseTtlS: number
  private readonly timeoutMs: number
  private readonly logger: Logger
  private state: State = 'new'
  private client?: Etcd3
  private watcher?: Watcher
  private rev = 0
  /** Raw values of the instances reported so far (see watch-batch.ts). */
  private readonly known = new Map<string, string>()
  private policyVersion = 0
  private readonly listeners: ((e: StoreEvent) => void)[] = []
  private readonly docs: EtcdSharedDocs

  /** This store's own lease: the current object, its id once granted, and a pending grant. */
  private lease?: Lease
  private leaseId?: string
  private leaseReady?: Promise<string>
  private regranting = false
  /** Every lease this store granted for itself (a record on one of them is held here). */
  private readonly ownIds = new Set<string>()
  /** The instances this daemon holds (attached and not detached or deleted since). */
  private readonly attached = new Map<string, InstanceRecord>()
  /** Operations on one instance run one after another. */
  private readonly chains = new Map<string, Promise<unknown>>()

  constructor(opts: EtcdStoreOptions) {
    if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0 || opts.endpoints.some((e) => typeof e !== 'string' || e === '')) {
      invalidArg('endpoints', 'must be a non-empty list of etcd URLs')
    }
    // etcd3 would dial an https endpoint in plaintext: say so instead of failing obscurely.
    if (opts.endpoints.some((e) => /^https:/i.test(e))) invalidArg('endpoints', 'https (TLS) etcd endpoints are not supported yet; use http://')
    const prefix = opts.prefix ?? '/weft/'
    if (typeof prefix !== 'string' || !prefix.endsWith('/')) invalidArg('prefix', 'must be a string ending with "/"')
    const ttl = opts.leaseTtlMs ?? 10_000
    if (!Number.isFinite(ttl) || ttl <= 0) invalidArg('leaseTtlMs', 'must be a positive number of milliseconds')
    const timeout = opts.requestTimeoutMs ?? 5000
    if (!Number.isFinite(timeout) || timeout <= 0) invalidArg('requestTimeoutMs', 'must be a positive number of milliseconds')
    this.etcd = loadEtcd3()
    this.keys = keysFor(prefix)
    this.endpoints = [...opts.endpoints]
    this.leaseTtlS = ttlSeconds(ttl)
    this.timeoutMs = timeout
    this.logger = opts.logger ?? silentLogger
    this.docs = new EtcdSharedDocs(() => this.open_(), this.keys, this.logger)
  }

  async open(): Promise<void> {
    if (this.state !== 'new') throw new Error('etcd store: open() called twice')
    this.state = 'opening'
    const timeoutMs = this.timeoutMs
    const client = new this.etcd.Etcd3({
      hosts: this.endpoints,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
    })
    this.client = client
    try {
      const { lease, id } = this.newLease()
      this.lease = lease
      this.leaseId = await id
      this.leaseReady = Promise.resolve(this.leaseId)
      this.watchLease(lease, this.leaseId)
      const snap = await this.readState()
      this.rev = snap.revision
      this.policyVersion = snap.policy?.version ?? 0
      for (const [id, raw] of snap.instances) this.known.set(id, raw)
      await this.startWatch(snap.revision + 1)
      this.state = 'open'
    } catch (err) {
      this.state = 'closed'
      this.lease?.release()
      client.close()
      throw new Error(`etcd store: cannot open ${this.endpoints.join(',')}: ${(err as Error).message}`, { cause: err })
    }
  }

  revision(): number {
    return this.rev
  }

  async readPolicy(): Promise<PolicyState> {
    const kv = await this.getKv(this.keys.policy)
    if (!kv) return { version: 0, resources: [] }
    return { version: Number(kv.mod_revision), resources: this.policyValue(kv).resources }
  }

  async writePolicy(resources: StoredResource[], entry: Pick<HistoryEntry, 'action' | 'summary'>, expectedVersion: number): Promise<number> {
    const client = this.open_()
    const current = await this.getKv(this.keys.policy)
    const actual = current ? Number(current.mod_revision) : 0
    if (actual !== expectedVersion) throw new ConflictError(expectedVersion, actual)
    const value: PolicyValue = { resources, at: new Date().toISOString(), action: entry.action, summary: entry.summary, nonce: randomUUID() }
    const ops = [client.put(this.keys.policy).value(JSON.stringify(value))]
    if (current) {
      // The version being replaced moves to history/<its version>, in the same transaction.
      const prev = this.policyValue(current)
      const h: HistoryValue = { version: actual, at: prev.at, action: prev.action, summary: prev.summary, resources: prev.resources }
      ops.push(client.put(this.keys.history(actual)).value(JSON.stringify(h)))
    }
    const res = await client.if(this.keys.policy, 'Mod', '==', expectedVersion).then(...ops).else(client.get(this.keys.policy)).commit()
    if (!res.succeeded) {
      const now = res.responses[0]?.response_range?.kvs[0]
      // A request retried after a lost response finds its own write.
      if (now && decodePolicy(now.value)?.nonce === value.nonce) return Number(now.mod_revision)
      throw new ConflictError(expectedVersion, now ? Number(now.mod_revision) : 0)
    }
    const version = Number(res.header.revision)
    await this.pruneHistory().catch((err: Error) => this.logger.warn(`etcd store: could not prune history: ${err.message}`))
    return version
  }

  async history(limit = HISTORY_KEPT): Promise<HistoryEntry[]> {
    if (limit <= 0) return []
    const client = this.open_()
    const reads: { op(): Promise<IRequestOp> }[] = [client.get(this.keys.policy)]
    // etcd reads limit 0 as "no limit".
    if (limit > 1) reads.push(client.getAll().prefix(this.keys.historyPrefix).sort('Key', 'Descend').limit(limit - 1))
    const res = await client.kv.txn({ success: await Promise.all(reads.map((r) => r.op())) })
    const entries: HistoryEntry[] = []
    const cur = res.responses[0]?.response_range?.kvs[0]
    if (cur) {
      const p = this.policyValue(cur)
      entries.push({ version: Number(cur.mod_revision), at: p.at, action: p.action, summary: p.summary })
    }
    for (const kv of res.responses[1]?.response_range?.kvs ?? []) {
      const version = Number(kv.key.toString().slice(this.keys.historyPrefix.length))
      const h = decodeHistory(kv.value, version)
      if (!h) {
        this.logger.warn(`etcd store: skipping unreadable history entry ${kv.key.toString()}`)
        continue
      }
      entries.push({ version, at: h.at, action: h.action, summary: h.summary })
    }
    return entries.slice(0, limit)
  }

  async policyAt(version: number): Promise<StoredResource[] | undefined> {
    if (!Number.isSafeInteger(version) || version <= 0) return undefined
    const client = this.open_()
    const ops = await Promise.all([client.get(this.keys.policy).op(), client.get(this.keys.history(version)).op()])
    const res = await client.kv.txn({ success: ops })
    const cur = res.responses[0]?.response_range?.kvs[0]
    if (cur && Number(cur.mod_revision) === version) return this.policyValue(cur).resources
    const old = res.responses[1]?.response_range?.kvs[0]
    return old ? decodeHistory(old.value, version)?.resources : undefined
  }

  attachInstance(rec: InstanceRecord): Promise<void> {
    return this.serial(rec.id, async () => {
      this.attached.set(rec.id, rec)
      const json = JSON.stringify(rec)
      for (let attempt = 0; ; attempt++) {
        const leaseId = await this.ownLease()
        try {
          await this.open_().put(this.keys.instance(rec.id)).value(json).lease(leaseId)
          return
        } catch (err) {
          if (attempt > 0 || !(err instanceof this.etcd.EtcdLeaseInvalidError)) throw err
          this.leaseLost(leaseId, err as Error)
        }
      }
    })
  }

  detachInstance(id: string, ttlMs: number): Promise<void> {
    return this.serial(id, async () => {
      await this.leaseSettled()
      this.attached.delete(id)
      const client = this.open_()
      const key = this.keys.instance(id)
      const kv = await this.getKv(key)
      // Only a record this daemon holds moves: one on another lease was attached elsewhere since
      // (or detached already) and stays as it is.
      if (!kv || !this.ownIds.has(kv.lease)) return
      const grant = await client.leaseClient.leaseGrant({ TTL: ttlSeconds(ttlMs) })
      // Not held by any daemon any more: other daemons stop showing it as connected elsewhere.
      const res = await client.if(key, 'Mod', '==', kv.mod_revision).then(client.put(key).value(withoutHolder(kv.value)).lease(grant.ID)).commit()
      // Changed meanwhile (attached again, deleted): the unused lease would expire anyway.
      if (!res.succeeded) await client.leaseClient.leaseRevoke({ ID: grant.ID }).catch(() => {})
    })
  }

  deleteInstance(id: string): Promise<void> {
    return this.serial(id, async () => {
      await this.leaseSettled()
      this.attached.delete(id)
      await this.open_().delete().key(this.keys.instance(id))
    })
  }

  async getInstance(id: string): Promise<InstanceRecord | undefined> {
    const kv = await this.getKv(this.keys.instance(id))
    return kv ? decodeInstance(kv.value, id) : undefined
  }

  async listInstances(): Promise<InstanceRecord[]> {
    const res = await this.open_().getAll().prefix(this.keys.instancesPrefix).exec()
    const out: InstanceRecord[] = []
    for (const kv of res.kvs) {
      const rec = decodeInstance(kv.value, kv.key.toString().slice(this.keys.instancesPrefix.length))
      if (rec) out.push(rec)
    }
    return out
  }

  async addJoinToken(t: JoinToken): Promise<void> {
    await this.open_().put(this.keys.join(t.hash)).value(JSON.stringify(t))
  }

  async findJoinToken(hash: string): Promise<JoinToken | undefined> {
    const kv = await this.getKv(this.keys.join(hash))
    return kv ? decodeJoinToken(kv.value, hash) : undefined
  }

  async adminTokenHash(): Promise<string | undefined> {
    const kv = await this.getKv(this.keys.admin)
    return kv ? kv.value.toString() : undefined
  }

  async createAdminTokenHash(hash: string): Promise<string> {
    const client = this.open_()
    // Create-only: of daemons starting together on a fresh etcd, exactly one sets it.
    const res = await client.if(this.keys.admin, 'Create', '==', 0).then(client.put(this.keys.admin).value(hash)).else(client.get(this.keys.admin)).commit()
    if (res.succeeded) return hash
    const kv = res.responses[0]?.response_range?.kvs[0]
    if (!kv) throw new Error('etcd store: the admin token hash was set and is gone again')
    return kv.value.toString()
  }

  sharedDoc(name: SharedDocName): SharedDoc {
    return this.docs.doc(name)
  }

  onEvent(listener: (e: StoreEvent) => void): void {
    this.listeners.push(listener)
  }

  async close(opts: EtcdStoreCloseOptions = {}): Promise<void> {
    if (this.state === 'closed' || this.state === 'new') {
      this.state = 'closed'
      return
    }
    // Let operations under way finish (each request has a deadline) before the client goes.
    await Promise.allSettled([...this.chains.values()])
    this.state = 'closed'
    const client = this.client!
    const watcher = this.watcher
    this.watcher = undefined
    if (watcher) await bounded(watcher.cancel(), 1000).catch(() => {})
    await this.docs.close()
    if (opts.revokeLease) await bounded(this.lease!.revoke(), this.timeoutMs).catch((err: Error) => this.logger.warn(`etcd store: could not revoke the lease: ${err.message}`))
    else this.lease?.release()
    client.close()
  }

  // --- internals ---

  private open_(): Etcd3 {
    if (this.state !== 'open') throw new Error(`etcd store is ${this.state === 'closed' ? 'closed' : 'not open'}`)
    return this.client!
  }

  private async getKv(key: string): Promise<IKeyValue | undefined> {
    const res = await this.open_().get(key).exec()
    return res.kvs[0]
  }

  /** The policy key's value; an unreadable one is an error, never an empty policy. */
  private policyValue(kv: IKeyValue): PolicyValue {
    const v = decodePolicy(kv.value)
    if (!v) throw new Error(`etcd store: ${kv.key.toString()} (mod revision ${kv.mod_revision}) is not a weft policy value`)
    return v
  }

  private serial<T>(id: string, task: () => Promise<T>): Promise<T> {
    try {
      this.open_()
    } catch (err) {
      return Promise.reject(err)
    }
    const prev = this.chains.get(id) ?? Promise.resolve()
    const run = prev.then(task, task)
    const settled = run.catch(() => {})
    this.chains.set(id, settled)
    void settled.then(() => {
      if (this.chains.get(id) === settled) this.chains.delete(id)
    })
    return run
  }

  /** One consistent read of the policy and the registry (at one revision). */
  private async readState(): Promise<{ revision: number; policy?: PolicyState; instances: Map<string, string> }> {
    const client = this.client!
    const ops = await Promise.all([client.get(this.keys.policy).op(), client.getAll().prefix(this.keys.instancesPrefix).op()])
    const res = await client.kv.txn({ success: ops })
    const cur = res.responses[0]?.response_range?.kvs[0]
    const policy = cur ? { version: Number(cur.mod_revision), resources: this.policyValue(cur).resources } : undefined
    const instances = new Map<string, string>()
    for (const kv of res.responses[1]?.response_range?.kvs ?? []) {
      const id = kv.key.toString().slice(this.keys.instancesPrefix.length)
      if (decodeInstance(kv.value, id)) instances.set(id, kv.value.toString())
    }
    return { revision: Number(res.header.revision), policy, instances }
  }

  private async startWatch(fromRevision: number): Promise<void> {
    const w = await this.client!.watch().prefix(this.keys.prefix).startRevision(String(fromRevision)).create()
    let down = false
    w.on('data', (res: IWatchResponse) => this.onWatchData(res))
    w.on('disconnected', (err) => {
      if (this.state !== 'open' || down) return
      down = true
      this.logger.warn(`etcd store: watch disconnected (${err.message}); reconnecting`)
    })
    w.on('connected', () => {
      if (!down) return
      down = false
      this.logger.info('etcd store: watch reconnected')
    })
    w.on('error', (err) => this.onWatchCanceled(w, err))
    this.watcher = w
  }

  private onWatchData(res: IWatchResponse): void {
    if (this.state === 'closed' || res.events.length === 0) return
    const batch = decodeBatch(this.keys, res.events, { known: this.known }, this.logger)
    for (const e of batch.events) {
      if (e.type === 'policy') this.policyVersion = e.state.version
      this.rev = Math.max(this.rev, e.revision)
      this.emit(e)
    }
    this.rev = Math.max(this.rev, batch.maxRevision)
  }

  /**
   * etcd canceled the watch (it cannot replay from where it was, e.g. after a compaction): read the
   * state again, report what differs from what was reported, and watch on from there.
   */
  private onWatchCanceled(w: Watcher, err: Error): void {
    if (this.state !== 'open' || w !== this.watcher) return
    this.watcher = undefined
    this.logger.warn(`etcd store: watch canceled (${err.message}); reading the state again`)
    void (async () => {
      for (let delay = 250; this.state === 'open'; delay = Math.min(delay * 2, 5000)) {
        try {
          const snap = await this.readState()
          this.resync(snap)
          await this.startWatch(snap.revision + 1)
          return
        } catch (e) {
          this.logger.warn(`etcd store: resync failed (${(e as Error).message}); retrying`)
          await sleep(delay)
        }
      }
    })()
  }

  private resync(snap: { revision: number; policy?: PolicyState; instances: Map<string, string> }): void {
    const revision = Math.max(snap.revision, this.rev)
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
    this.rev = revision
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
        this.logger.error(`etcd store: event listener failed: ${(err as Error).message}`)
      }
    }
  }

  private newLease(): { lease: Lease; id: Promise<string> } {
    const lease = this.client!.lease(this.leaseTtlS)
    const id = lease.grant().then((i) => {
      this.ownIds.add(i)
      return i
    })
    id.catch(() => {})
    return { lease, id }
  }

  private watchLease(lease: Lease, id: string): void {
    lease.on('lost', (err) => this.leaseLost(id, err))
  }

  /** The own lease's id, waiting (bounded) while a lost lease is being replaced. */
  private ownLease(): Promise<string> {
    if (this.leaseId !== undefined && !this.regranting) return Promise.resolve(this.leaseId)
    return bounded(this.leaseReady!, this.timeoutMs).catch((err: Error) => {
      throw new Error(`etcd store: no lease to hold instances (${err.message})`)
    })
  }

  /**
   * While a lost lease is being replaced, detach and delete wait for it: the replacement puts the
   * held instances back, and must not put back one that was let go meanwhile.
   */
  private async leaseSettled(): Promise<void> {
    if (this.regranting) await bounded(this.leaseReady!, this.timeoutMs).catch(() => {})
  }

  private leaseLost(id: string, err: Error): void {
    if (this.state !== 'open' || this.regranting || id !== this.leaseId) return
    this.regranting = true
    this.logger.warn(`etcd store: lease lost (${err.message}); granting a new one for ${this.attached.size} attached instance(s)`)
    this.lease?.release()
    this.leaseReady = this.regrant()
    this.leaseReady.catch(() => {})
  }

  private async regrant(): Promise<string> {
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      if (this.state !== 'open') throw new Error('etcd store is closed')
      const { lease, id } = this.newLease()
      try {
        const newId = await id
        this.lease = lease
        this.leaseId = newId
        await this.reattachAll(newId)
        this.regranting = false
        this.watchLease(lease, newId)
        this.logger.info('etcd store: new lease granted; attached instances put back')
        return newId
      } catch (err) {
        lease.release()
        this.logger.warn(`etcd store: could not replace the lease (${(err as Error).message}); retrying`)
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
    const client = this.client!
    for (const [id, rec] of [...this.attached]) {
      if (this.attached.get(id) !== rec) continue
      const key = this.keys.instance(id)
      const kv = await this.getKv(key)
      if (kv && !this.ownIds.has(kv.lease)) {
        this.attached.delete(id)
        continue
      }
      await client.if(key, 'Mod', '==', kv?.mod_revision ?? 0).then(client.put(key).value(JSON.stringify(rec)).lease(newId)).commit()
    }
  }

  /** Deletes history entries past the newest HISTORY_KEPT - 1 (the current version is the last one). */
  private async pruneHistory(): Promise<void> {
    const client = this.open_()
    const keep = HISTORY_KEPT - 1
    const keys = await client.getAll().prefix(this.keys.historyPrefix).sort('Key', 'Descend').limit(keep + 1).keys()
    const oldestKept = keys[keep - 1]
    if (keys.length <= keep || oldestKept === undefined) return
    await client.delete().inRange({ start: this.keys.historyPrefix, end: oldestKept })
  }
}

/** An instance value without `heldBy` (as is when it does not parse: decodeInstance judges it). */
function withoutHolder(raw: Buffer): string | Buffer {
  try {
    const v = JSON.parse(raw.toString()) as Record<string, unknown>
    if (typeof v !== 'object' || v === null || !('heldBy' in v)) return raw
    delete v.heldBy
    return JSON.stringify(v)
  } catch {
    return raw
  }
}

/** etcd leases are whole seconds, at least 1 (etcd itself raises it to its minimum). */
function ttlSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}
