// The push hub: one view (policy resources + registry endpoints) at one version, pushed to every
// open watch stream as newline-delimited JSON.
//
// - Store events (from this daemon or, with etcd, another) mark the view dirty; changes within one
//   coalesce window become ONE new version, numbered by the newest event's revision. A policy
//   change sends everyone a snapshot; a registry-only change sends an `endpoints` delta holding the
//   full list of each service whose list changed, applicable on top of `base`.
// - A change nobody can see (an instance re-registered with the same endpoint) makes no version.
// - A new stream gets a snapshot first, unless it already holds the current version. While
//   changes are pending it waits for the window to close and gets the snapshot then, so its first
//   view already holds what was just registered (its own endpoint) without breaking coalescing.
// - Backpressure: when write() returns false the stream is skipped until 'drain', then sent one
//   full snapshot if it missed anything. Nothing queues per watcher beyond the socket's buffer.
// - Every pingMs a ping, so both ends see a silent stream is still alive. The instance answers pings
//   with a heartbeat (any call from it counts: heard()); with leaseTtlMs set, a stream whose instance
//   was not heard from for a whole lease (a frozen process keeps its TCP stream open) or that stayed
//   backed up that long is dropped: its socket is destroyed and `dropped` says why.
// - Policy snapshots and deltas list the resources removed on purpose (`deleted`: deletions.ts), so an
//   instance keeps an inbound policy that vanished without a DELETE (RELIABILITY F5); seeded at
//   start from the store's kept history (deletion-seed.ts), so deletions outlive a restart.
// Messages are serialized once per version and the same string is written to every stream.
import type { EndpointMap, WatchMessage } from '../control/protocol.js'
import type { Logger } from '../util/logger.js'
import { seedDeletions } from './deletion-seed.js'
import { DeletionLog, RECENT_DELETIONS, withDeleted } from './deletions.js'
import { buildEndpoints, diffEndpoints } from './endpoints-view.js'
import type { InstanceRecord, PolicyState, Store, StoreEvent, StoredResource } from './store.js'
import { scopeKey, scopeResources, type ViewScope } from './view-scope.js'

/** Streams opened without a scope (tests driving the hub directly) see the whole policy. */
const UNSCOPED: ViewScope = { namespace: '*', service: '*' }

/** The part of a ServerResponse the hub writes to (a fake in unit tests). */
export interface WatchSink {
  write(chunk: string): boolean
  once(event: 'drain', listener: () => void): unknown
  end(): unknown
  /** Cuts the stream at once (a frozen peer never reads an orderly end). */
  destroy?(): unknown
}

export type DropReason = 'silent' | 'backlog'

export interface HubOptions {
  coalesceMs: number
  pingMs: number
  logger: Logger
  /** A snapshot or delta of `version` went out to a stream of instance `id` (for status). */
  onSent?: (id: string, version: number) => void
  /** Streams silent or backed up this long are dropped; undefined: never. */
  leaseTtlMs?: number
}

export interface Watch {
  readonly id: string
  /** Set when the hub dropped the stream: its instance went silent, or it stayed backed up. */
  readonly dropped: DropReason | undefined
  /** Stops pushing to this stream (it closed); does not end it. */
  remove(): void
}

interface Watcher {
  id: string
  /** Which view it gets (view-scope.ts): its instance's namespace/service. */
  scope: string
  sink: WatchSink
  /** The version this stream holds from what was written to it; -1 for none. */
  sent: number
  blocked: boolean
  /** When it got backed up (while blocked). */
  blockedAt: number
  /** When its instance was last heard from (stream open, heartbeat, any call). */
  heardAt: number
  dropped: DropReason | undefined
  /** A message was skipped while blocked: a snapshot is owed after 'drain'. */
  missed: boolean
  gone: boolean
}

export class PushHub {
  /** The version watchers are told (the last pushed). */
  version = 0
  private resources: object[] = []
  private stored: StoredResource[] = []
  private policyVersion = -1
  /** What was removed on purpose, for the `deleted` lists. */
  private readonly deletions = new DeletionLog()
  /** The registry as this daemon last heard it from the store. */
  private readonly instances = new Map<string, InstanceRecord>()
  /** The endpoints as of `version` (what a watcher holding `version` holds). */
  private pushed: EndpointMap = {}
  /** The newest revision among events seen: the number the next version gets. */
  private seen = 0
  private pendingPolicy: PolicyState | undefined
  private dirty = false
  private latestEndpoints: EndpointMap | undefined
  private timer: NodeJS.Timeout | undefined
  private pinger: NodeJS.Timeout | undefined
  /** Serialized once per version and scope; every stream of a scope gets the same string. */
  private snapshotLines = new Map<string, string>()
  private scoped = new Map<string, object[]>()
  private readonly scopes = new Map<string, ViewScope>()
  private readonly watchers = new Set<Watcher>()
  /**
   * The same watchers by instance id. Every heartbeat and ACK looks its instance up: a scan of all
   * streams made each push cost O(n²) (about 1 s of daemon CPU per push at 10,000 instances).
   */
  private readonly byId = new Map<string, Set<Watcher>>()
  private closed = false
  /** While start() loads: told of every deletion event. */
  private onStartDelete: ((id: string) => void) | undefined

  constructor(private readonly store: Store, private readonly opts: HubOptions) {}

  async start(): Promise<void> {
    // Listen first, then load: an event that lands meanwhile is applied on top, not lost.
    this.store.onEvent((e) => this.onEvent(e))
    const deleted = new Set<string>()
    this.onStartDelete = (id) => deleted.add(id)
    const policy = await this.store.readPolicy()
    if (policy.version > this.policyVersion) this.setPolicy(policy)
    // A newer policy an event brought meanwhile is the starting one, not a change to push.
    if (this.pendingPolicy !== undefined && this.pendingPolicy.version > this.policyVersion) this.setPolicy(this.pendingPolicy)
    this.pendingPolicy = undefined
    this.deletions.reset({ version: this.policyVersion, resources: this.stored })
    // An event is newer than the list read: a record it put stays, one it deleted stays gone.
    for (const rec of await this.store.listInstances()) if (!this.instances.has(rec.id) && !deleted.has(rec.id)) this.instances.set(rec.id, rec)
    this.onStartDelete = undefined
    clearTimeout(this.timer)
    this.timer = undefined
    this.latestEndpoints = undefined
    this.version = Math.max(this.store.revision(), this.seen)
    this.seen = this.version
    this.pushed = this.endpoints()
    this.dirty = false
    this.pinger = setInterval(() => this.ping(), this.opts.pingMs)
    this.pinger.unref()
    // Deletions before this start (RELIABILITY F5), from the kept history: before any stream opens.
    this.deletions.seed(await seedDeletions(this.store, { version: this.policyVersion, resources: this.stored }, this.opts.logger, RECENT_DELETIONS))
  }

  /** The registry's endpoints now (including changes not pushed yet). */
  endpoints(): EndpointMap {
    return (this.latestEndpoints ??= buildEndpoints(this.instances.values()))
  }

  /** The view at `version`, as a snapshot message (for GET /v1/snapshot). */
  snapshot(): { version: number; resources: object[]; endpoints: EndpointMap; deleted?: string[] } {
    return { version: this.version, resources: this.resources, endpoints: this.pushed, ...withDeleted(this.deletions.forSnapshot('', undefined)) }
  }

  /** Opens pushing to a stream; `since` is the version the instance says it holds. */
  watch(id: string, sink: WatchSink, since: number | undefined, scope: ViewScope = UNSCOPED): Watch {
    const key = scopeKey(scope)
    if (scope !== UNSCOPED && !this.scopes.has(key)) {
      this.scopes.set(key, scope)
      this.deletions.scopeAdded(key, scope)
    }
    const w: Watcher = { id, scope: key, sink, sent: since ?? -1, blocked: false, blockedAt: 0, heardAt: Date.now(), dropped: undefined, missed: false, gone: false }
    this.addWatcher(w)
    // Holding the current version: nothing to send until a change. Changes pending: the
    // snapshot goes out when the window closes (flush sends one to any stream not at base).
    if (w.sent !== this.version && !this.dirty) this.sendSnapshot(w)
    return {
      id,
      get dropped() {
        return w.dropped
      },
      remove: () => {
        w.gone = true
        this.removeWatcher(w)
      },
    }
  }

  /** Instance `id` was heard from (a heartbeat or any call): its streams are alive. */
  heard(id: string): void {
    const ws = this.byId.get(id)
    if (!ws) return
    const now = Date.now()
    for (const w of ws) w.heardAt = now
  }

  /** Ends the streams of instance `id` (it was deleted: it must register again). */
  endStreams(id: string): void {
    const ws = this.byId.get(id)
    if (!ws) return
    for (const w of [...ws]) {
      w.gone = true
      this.removeWatcher(w)
      w.sink.end()
    }
  }

  /** Streams open for instance `id` on this daemon. */
  streams(id: string): number {
    return this.byId.get(id)?.size ?? 0
  }

  private addWatcher(w: Watcher): void {
    this.watchers.add(w)
    let ws = this.byId.get(w.id)
    if (!ws) this.byId.set(w.id, (ws = new Set()))
    ws.add(w)
  }

  private removeWatcher(w: Watcher): void {
    this.watchers.delete(w)
    const ws = this.byId.get(w.id)
    if (!ws) return
    ws.delete(w)
    if (ws.size === 0) this.byId.delete(w.id)
  }

  close(): void {
    this.closed = true
    clearTimeout(this.timer)
    clearInterval(this.pinger)
    for (const w of this.watchers) {
      w.gone = true
      w.sink.end()
    }
    this.watchers.clear()
    this.byId.clear()
  }

  private onEvent(e: StoreEvent): void {
    if (e.revision > this.seen) this.seen = e.revision
    if (e.type === 'policy') {
      if (e.state.version <= this.policyVersion) return
      this.deletions.note(e.state)
      this.pendingPolicy = e.state
    } else {
      for (const id of e.deleted) {
        this.instances.delete(id)
        this.onStartDelete?.(id)
      }
      for (const rec of e.put) this.instances.set(rec.id, rec)
      this.latestEndpoints = undefined
      // Deleted while its stream is open (DELETE, here or through another daemon): end the stream
      // so a live instance notices (its watch then 404s) and registers again.
      for (const id of e.deleted) this.endStreams(id)
    }
    this.dirty = true
    if (!this.timer && !this.closed) {
      this.timer = setTimeout(() => this.flush(), this.opts.coalesceMs)
      this.timer.unref()
    }
  }

  /** The coalesce window closed: one new version for everything that changed in it. */
  private flush(): void {
    this.timer = undefined
    this.dirty = false
    if (this.closed) return
    const next = this.endpoints()
    const policy = this.pendingPolicy
    this.pendingPolicy = undefined
    const policyChanged = policy !== undefined && policy.version > this.policyVersion
    const changed = diffEndpoints(this.pushed, next)
    if (!policyChanged && changed === undefined) {
      // Nothing a watcher can see: no new version; streams that waited get the current view.
      for (const w of this.watchers) if (w.sent !== this.version) this.sendSnapshot(w)
      return
    }
    const base = this.version
    let version = this.seen
    if (version <= base) {
      this.opts.logger.error(`push hub: store revision ${version} is not above the pushed version ${base}; pushing ${base + 1}`)
      version = base + 1
      this.seen = version
    }
    this.version = version
    if (policyChanged) {
      this.deletions.pushed(this.stored, policy.resources, this.scopes)
      this.setPolicy(policy)
    }
    this.pushed = next
    this.snapshotLines.clear()
    // A stream at the base version gets only what changed: the resources when the policy did (never
    // the unchanged endpoints of every service), the changed services' endpoint lists otherwise.
    const deltas = new Map<string, string>()
    const endpointsDelta = policyChanged ? undefined : line({ type: 'endpoints', version, base, endpoints: changed! })
    const deltaFor = (scope: string): string => {
      if (endpointsDelta !== undefined) return endpointsDelta
      let d = deltas.get(scope)
      if (d === undefined) deltas.set(scope, (d = line({ type: 'policy', version, base, resources: this.resourcesFor(scope), endpoints: changed ?? {}, ...withDeleted(this.deletions.forDelta(scope, this.scopes.get(scope))) })))
      return d
    }
    for (const w of [...this.watchers]) {
      if (w.sent === base) {
        if (this.write(w, deltaFor(w.scope), true)) this.markSent(w)
      } else this.sendSnapshot(w)
    }
  }

  private setPolicy(p: PolicyState): void {
    this.policyVersion = p.version
    this.stored = p.resources
    this.resources = p.resources.map((r) => r.value)
    this.snapshotLines.clear()
    this.scoped.clear()
  }

  /** The policy resources instances of `scope` are shown. */
  private resourcesFor(scope: string): object[] {
    const s = this.scopes.get(scope)
    if (!s) return this.resources
    let r = this.scoped.get(scope)
    if (!r) this.scoped.set(scope, (r = scopeResources(this.resources, s)))
    return r
  }

  private sendSnapshot(w: Watcher): void {
    let text = this.snapshotLines.get(w.scope)
    if (text === undefined) this.snapshotLines.set(w.scope, (text = line({ type: 'snapshot', version: this.version, resources: this.resourcesFor(w.scope), endpoints: this.pushed, ...withDeleted(this.deletions.forSnapshot(w.scope, this.scopes.get(w.scope))) })))
    if (this.write(w, text, true)) this.markSent(w)
  }

  private markSent(w: Watcher): void {
    w.sent = this.version
    this.opts.onSent?.(w.id, this.version)
  }

  private ping(): void {
    if (this.watchers.size === 0) return
    this.dropDead()
    const msg = line({ type: 'ping', version: this.version })
    for (const w of this.watchers) this.write(w, msg, false)
  }

  /** Drops streams whose instance was silent, or that stayed backed up, for a whole lease. */
  private dropDead(): void {
    const ttl = this.opts.leaseTtlMs
    if (ttl === undefined) return
    const now = Date.now()
    for (const w of [...this.watchers]) {
      const why: DropReason | undefined = now - w.heardAt > ttl ? 'silent' : w.blocked && now - w.blockedAt > ttl ? 'backlog' : undefined
      if (!why) continue
      this.opts.logger.warn(why === 'silent'
        ? `push hub: instance ${w.id} sent no heartbeat for ${now - w.heardAt} ms (lease ${ttl} ms): dropping its stream and its lease`
        : `push hub: the stream of instance ${w.id} has been backed up for ${now - w.blockedAt} ms (lease ${ttl} ms): dropping it`)
      w.dropped = why
      w.gone = true
      this.removeWatcher(w)
      if (w.sink.destroy) w.sink.destroy()
      else w.sink.end()
    }
  }

  /** Writes unless the stream is backed up; false when skipped. */
  private write(w: Watcher, text: string, content: boolean): boolean {
    if (w.gone) return false
    if (w.blocked) {
      if (content) w.missed = true
      return false
    }
    if (!w.sink.write(text)) {
      // Accepted into the socket's buffer, but the buffer is over its mark: skip this stream until
      // it drains, then catch it up with one snapshot.
      w.blocked = true
      w.blockedAt = Date.now()
      w.sink.once('drain', () => {
        w.blocked = false
        if (w.gone || !w.missed) return
        w.missed = false
        this.sendSnapshot(w)
      })
    }
    return true
  }
}

function line(msg: WatchMessage): string {
  return JSON.stringify(msg) + '\n'
}
