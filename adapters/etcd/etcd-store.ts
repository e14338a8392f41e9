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
// - The identity documents (the CA, the JWT-SVID key) are in shared-docs.ts; the own lease and the
//   instances held on it in own-lease.ts; the read-then-watch that feeds onEvent in store-feed.ts.
import type { Etcd3, IKeyValue, IRequestOp } from 'etcd3'
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
import { decodeHistory, decodeInstance, decodeJoinToken, decodePolicy, keysFor, policyValue, type HistoryValue, type Keys, type PolicyValue } from './keys.js'
import { loadEtcd3, type Etcd3Module } from './load.js'
import { OwnLease } from './own-lease.js'
import { StoreFeed } from './store-feed.js'
import { EtcdSharedDocs } from './shared-docs.js'
import { bounded } from './timing.js'

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


export class EtcdStore implements Store {
  readonly keys: Keys
  private readonly etcd: Etcd3Module
  private readonly endpoints: string[]
  private readonly leaseTtlS: number
  private readonly timeoutMs: number
  private readonly logger: Logger
  private state: State = 'new'
  private client?: Etcd3
  /** The watch on the whole prefix: revision() and onEvent come from it. */
  private readonly feed: StoreFeed
  private readonly docs: EtcdSharedDocs

  /** This store's own lease and the instances held on it. */
  private readonly own: OwnLease
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
    this.feed = new StoreFeed({ client: () => this.client!, isOpen: () => this.state === 'open', isClosed: () => this.state === 'closed', keys: this.keys, logger: this.logger })
    this.own = new OwnLease({
      client: () => this.client!,
      isOpen: () => this.state === 'open',
      ttlS: this.leaseTtlS,
      timeoutMs: this.timeoutMs,
      logger: this.logger,
      instanceKey: (id) => this.keys.instance(id),
      getKv: (key) => this.getKv(key),
    })
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
      await this.own.grant()
      await this.feed.start()
      this.state = 'open'
    } catch (err) {
      this.state = 'closed'
      this.own.release()
      client.close()
      throw new Error(`etcd store: cannot open ${this.endpoints.join(',')}: ${(err as Error).message}`, { cause: err })
    }
  }

  revision(): number {
    return this.feed.revision
  }

  async readPolicy(): Promise<PolicyState> {
    const kv = await this.getKv(this.keys.policy)
    if (!kv) return { version: 0, resources: [] }
    const v = policyValue(kv)
    return { version: Number(kv.mod_revision), resources: v.resources, action: v.action }
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
      const prev = policyValue(current)
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
      const p = policyValue(cur)
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
    if (cur && Number(cur.mod_revision) === version) return policyValue(cur).resources
    const old = res.responses[1]?.response_range?.kvs[0]
    return old ? decodeHistory(old.value, version)?.resources : undefined
  }

  attachInstance(rec: InstanceRecord): Promise<void> {
    return this.serial(rec.id, async () => {
      this.own.held.set(rec.id, rec)
      const json = JSON.stringify(rec)
      for (let attempt = 0; ; attempt++) {
        const leaseId = await this.own.id()
        try {
          await this.open_().put(this.keys.instance(rec.id)).value(json).lease(leaseId)
          return
        } catch (err) {
          if (attempt > 0 || !(err instanceof this.etcd.EtcdLeaseInvalidError)) throw err
          this.own.lost(leaseId, err as Error)
        }
      }
    })
  }

  detachInstance(id: string, ttlMs: number): Promise<void> {
    return this.serial(id, async () => {
      await this.own.settled()
      this.own.held.delete(id)
      const client = this.open_()
      const key = this.keys.instance(id)
      const kv = await this.getKv(key)
      // Only a record this daemon holds moves: one on another lease was attached elsewhere since
      // (or detached already) and stays as it is.
      if (!kv || !this.own.owns(kv.lease)) return
      const grant = await client.leaseClient.leaseGrant({ TTL: ttlSeconds(ttlMs) })
      // Not held by any daemon any more: other daemons stop showing it as connected elsewhere.
      const res = await client.if(key, 'Mod', '==', kv.mod_revision).then(client.put(key).value(withoutHolder(kv.value)).lease(grant.ID)).commit()
      // Changed meanwhile (attached again, deleted): the unused lease would expire anyway.
      if (!res.succeeded) await client.leaseClient.leaseRevoke({ ID: grant.ID }).catch(() => {})
    })
  }

  deleteInstance(id: string): Promise<void> {
    return this.serial(id, async () => {
      await this.own.settled()
      this.own.held.delete(id)
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
    this.feed.onEvent(listener)
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
    await this.feed.stop()
    await this.docs.close()
    if (opts.revokeLease) await bounded(this.own.revoke(), this.timeoutMs).catch((err: Error) => this.logger.warn(`etcd store: could not revoke the lease: ${err.message}`))
    else this.own.release()
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
