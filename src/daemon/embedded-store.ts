// The default store: files in the data dir for what must survive a restart (policy, history,
// token hashes), memory for the registry with leases. The registry is also saved (coalesced,
// off the request path) to registry.json: a restarted daemon restores those registrations as
// leases that end after one TTL unless their instance's watch comes back, so a restart does not
// empty every caller's endpoint list while the instances reconnect one by one (static stability).
// An instance the daemon no longer knows (its lease ended) gets 404 and registers again.
//
//   <dir>/policy.json            { format, version, revision, resources }
//   <dir>/history/<version>.json { version, at, action, summary, resources } (the last 100)
//   <dir>/tokens.json            { admin?: sha256, join: JoinToken[] }
//   <dir>/registry.json          { format, savedAt, instances: InstanceRecord[], expires }
// (every file 0600, the dirs 0700)
//
// Every file write goes through writeFileAtomic (a crash leaves each file old or new), and those
// of policy, history and tokens through one queue. File formats: embedded-files.ts; the coalesced
// registry.json saves: registry-saver.ts.
import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { silentLogger, type Logger } from '../util/logger.js'
import { removeTempFiles, writeFileAtomic } from '../util/atomic-file.js'
import { lockDir } from './dir-lock.js'
import { FORMAT, readJson, readPolicyFile, type HistoryFile, type PolicyFile, type RegistryFile, type TokensFile } from './embedded-files.js'
import { RegistrySaver } from './registry-saver.js'
import { Serial } from './serial.js'
import {
  ConflictError,
  type HistoryEntry,
  type InstanceRecord,
  type JoinToken,
  type PolicyState,
  type Store,
  type StoreEvent,
  type StoredResource,
} from './store.js'

/** History entries kept (older ones are deleted). */
export const HISTORY_KEPT = 100

/**
 * Revisions are reserved this many at a time: policy.json records the highest revision this store
 * may have handed out, written before any revision above the previous mark is used. A restart
 * continues above it, so a number told to an instance before a crash is never reused for another
 * view — while registry changes (most changes) cost no disk write.
 */
const REVISION_BLOCK = 1000

interface Lease {
  rec: InstanceRecord
  /** Set while the instance is not held (no open stream): when it fires, the instance is gone. */
  timer?: NodeJS.Timeout
  /** When the timer fires (epoch ms): saved, so a restart does not give the lease a fresh TTL. */
  expiresAt?: number
}

export interface EmbeddedStoreOptions {
  /** Where skipped files (an unreadable history entry) are reported. */
  logger?: Logger
  /** How long a registration restored from registry.json lives without its watch; default 10 s. */
  restoreTtlMs?: number
}

export class EmbeddedStore implements Store {
  private readonly policyFile: string
  private readonly historyDir: string
  private readonly tokensFile: string
  private readonly registryFile: string
  private readonly logger: Logger
  private readonly restoreTtlMs: number
  /** registry.json, saved coalesced off the request path (registry-saver.ts). */
  private readonly registrySaver: RegistrySaver

  private policy: PolicyState = { version: 0, resources: [] }
  private rev = 0
  private reserved = 0
  /** Newest first, without resources (read from disk on demand: up to 100 full policies). */
  private historyIndex: HistoryEntry[] = []
  private tokens: TokensFile = { join: [] }
  private readonly joinByHash = new Map<string, JoinToken>()
  private readonly instances = new Map<string, Lease>()
  private readonly listeners: ((e: StoreEvent) => void)[] = []
  private readonly queue = new Serial()
  private unlock?: () => Promise<void>
  private state: 'new' | 'open' | 'closed' = 'new'

  constructor(readonly dir: string, opts: EmbeddedStoreOptions = {}) {
    this.policyFile = join(dir, 'policy.json')
    this.historyDir = join(dir, 'history')
    this.tokensFile = join(dir, 'tokens.json')
    this.registryFile = join(dir, 'registry.json')
    this.logger = opts.logger ?? silentLogger
    this.restoreTtlMs = opts.restoreTtlMs ?? 10_000
    this.registrySaver = new RegistrySaver(this.registryFile, this.logger, () => {
      const expires: Record<string, number> = {}
      for (const l of this.instances.values()) if (l.timer !== undefined && l.expiresAt !== undefined) expires[l.rec.id] = l.expiresAt
      return { format: FORMAT, savedAt: new Date().toISOString(), instances: [...this.instances.values()].map((l) => l.rec), expires }
    })
  }

  async open(): Promise<void> {
    if (this.state !== 'new') throw new Error('embedded store: open() called twice')
    await mkdir(this.historyDir, { recursive: true, mode: 0o700 })
    this.unlock = await lockDir(this.dir)
    try {
      // A crash mid-write leaves a temp file beside the intact target: drop it.
      for (const d of [this.dir, this.historyDir]) {
        for (const name of await removeTempFiles(d)) this.logger.warn(`embedded store: removed ${join(d, name)} left by an interrupted write`)
      }
      const stored = await readPolicyFile(this.policyFile)
      this.policy = { version: stored?.version ?? 0, resources: stored?.resources ?? [] }
      this.historyIndex = await this.readHistoryIndex()
      // What wrote the current version: its history entry (lost only if a crash came between the two writes).
      const current = this.historyIndex.find((e) => e.version === this.policy.version)
      if (current) this.policy.action = current.action
      const tokens = await readJson<TokensFile>(this.tokensFile)
      if (tokens) this.tokens = { admin: typeof tokens.admin === 'string' ? tokens.admin : undefined, join: Array.isArray(tokens.join) ? tokens.join : [] }
      for (const t of this.tokens.join) this.joinByHash.set(t.hash, t)
      await this.restoreRegistry()
      // Continue above everything that may have been handed out (see REVISION_BLOCK); the current
      // view after a restart (policy, empty registry) is a new number too.
      this.rev = Math.max(stored?.revision ?? 0, this.policy.version, this.historyIndex[0]?.version ?? 0) + 1
      this.reserved = this.rev + REVISION_BLOCK
      await this.writePolicyFile()
      this.state = 'open'
    } catch (err) {
      await this.unlock()
      throw err
    }
  }

  revision(): number {
    return this.rev
  }

  async readPolicy(): Promise<PolicyState> {
    return { version: this.policy.version, resources: this.policy.resources, ...(this.policy.action ? { action: this.policy.action } : {}) }
  }

  writePolicy(resources: StoredResource[], entry: Pick<HistoryEntry, 'action' | 'summary'>, expectedVersion: number): Promise<number> {
    return this.mutate(async () => {
      if (this.policy.version !== expectedVersion) throw new ConflictError(expectedVersion, this.policy.version)
      const version = this.rev + 1
      const stored = resources.map((r) => ({ kind: r.kind, namespace: r.namespace, name: r.name, value: jsonClone(r.value) }))
      const at = new Date().toISOString()
      const previous = { policy: this.policy, reserved: this.reserved }
      this.policy = { version, resources: stored, action: entry.action }
      if (version > this.reserved) this.reserved = version + REVISION_BLOCK
      try {
        // The policy first: a crash before the history write loses one history line, never
        // leaves a history entry for a policy that was not stored.
        await this.writePolicyFile()
      } catch (err) {
        this.policy = previous.policy
        this.reserved = previous.reserved
        throw err
      }
      const h: HistoryFile = { version, at, action: entry.action, summary: entry.summary, resources: stored }
      try {
        await writeFileAtomic(join(this.historyDir, `${version}.json`), JSON.stringify(h), 0o600)
        this.historyIndex.unshift({ version, at, action: entry.action, summary: entry.summary })
        await this.pruneHistory()
      } catch (err) {
        this.logger.error(`embedded store: could not write history entry ${version}: ${(err as Error).message}`)
      }
      this.rev = version
      this.emit({ type: 'policy', revision: version, state: { version, resources: stored, action: entry.action } })
      return version
    })
  }

  async history(limit = HISTORY_KEPT): Promise<HistoryEntry[]> {
    return this.historyIndex.slice(0, Math.max(0, limit))
  }

  async policyAt(version: number): Promise<StoredResource[] | undefined> {
    if (!this.historyIndex.some((e) => e.version === version)) return undefined
    const h = await readJson<HistoryFile>(join(this.historyDir, `${version}.json`)).catch(() => undefined)
    return Array.isArray(h?.resources) ? h.resources : undefined
  }

  attachInstance(rec: InstanceRecord): Promise<void> {
    return this.mutate(async () => {
      const lease = this.instances.get(rec.id)
      if (lease) clearTimeout(lease.timer)
      // The same record again (a watch reopening): held, but nothing changed to tell anyone.
      // Who holds it (heldBy) is no view change either.
      if (lease && sameJson(withoutHolder(lease.rec), withoutHolder(rec))) {
        lease.rec = rec
        lease.timer = undefined
        lease.expiresAt = undefined
        return
      }
      this.instances.set(rec.id, { rec })
      await this.nextRevision((revision) => ({ type: 'instances', revision, put: [rec], deleted: [] }))
      this.registrySaver.soon()
    })
  }

  detachInstance(id: string, ttlMs: number): Promise<void> {
    return this.mutate(async () => {
      const lease = this.instances.get(id)
      if (!lease) return
      clearTimeout(lease.timer)
      // Held by no stream any more (no event: nobody sees heldBy in a view).
      if (lease.rec.heldBy !== undefined) lease.rec = withoutHolder(lease.rec)
      const timer = setTimeout(() => {
        void this.mutate(async () => {
          if (this.instances.get(id) !== lease || lease.timer !== timer) return
          await this.remove(id)
        }).catch((err: Error) => this.logger.error(`embedded store: lease expiry of ${id} failed: ${err.message}`))
      }, ttlMs)
      // Leases must not keep a process alive on their own; close() clears them.
      timer.unref()
      lease.timer = timer
      lease.expiresAt = Date.now() + ttlMs
    })
  }

  deleteInstance(id: string): Promise<void> {
    return this.mutate(() => this.remove(id))
  }

  async getInstance(id: string): Promise<InstanceRecord | undefined> {
    return this.instances.get(id)?.rec
  }

  async listInstances(): Promise<InstanceRecord[]> {
    return [...this.instances.values()].map((l) => l.rec)
  }

  addJoinToken(t: JoinToken): Promise<void> {
    return this.mutate(async () => {
      const next = { ...this.tokens, join: [...this.tokens.join, t] }
      await writeFileAtomic(this.tokensFile, JSON.stringify(next), 0o600)
      this.tokens = next
      this.joinByHash.set(t.hash, t)
    })
  }

  async findJoinToken(hash: string): Promise<JoinToken | undefined> {
    return this.joinByHash.get(hash)
  }

  async adminTokenHash(): Promise<string | undefined> {
    return this.tokens.admin
  }

  createAdminTokenHash(hash: string): Promise<string> {
    return this.mutate(async () => {
      if (this.tokens.admin !== undefined) return this.tokens.admin
      const next = { ...this.tokens, admin: hash }
      await writeFileAtomic(this.tokensFile, JSON.stringify(next), 0o600)
      this.tokens = next
      return hash
    })
  }

  onEvent(listener: (e: StoreEvent) => void): void {
    this.listeners.push(listener)
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return
    const wasOpen = this.state === 'open'
    this.state = 'closed'
    for (const lease of this.instances.values()) clearTimeout(lease.timer)
    await this.queue.idle()
    // The registry as it stands at shutdown: the next start restores it (leases of one TTL).
    if (wasOpen) {
      await this.registrySaver.flush()
    }
    if (wasOpen) await this.unlock?.()
  }

  private mutate<T>(task: () => Promise<T>): Promise<T> {
    if (this.state !== 'open') return Promise.reject(new Error(`embedded store is ${this.state === 'new' ? 'not open' : 'closed'}`))
    return this.queue.run(async () => {
      if (this.state !== 'open') throw new Error('embedded store is closed')
      return task()
    })
  }

  private async remove(id: string): Promise<void> {
    const lease = this.instances.get(id)
    if (!lease) return
    clearTimeout(lease.timer)
    this.instances.delete(id)
    await this.nextRevision((revision) => ({ type: 'instances', revision, put: [], deleted: [id] }))
    this.registrySaver.soon()
  }

  /** Registrations saved by the last daemon, restored as leases that end unless their watch returns. */
  private async restoreRegistry(): Promise<void> {
    const f = await readJson<RegistryFile>(this.registryFile).catch((err: Error) => {
      this.logger.warn(`embedded store: ignoring ${this.registryFile}: ${err.message}`)
      return undefined
    })
    if (!f || f.format !== FORMAT || !Array.isArray(f.instances)) return
    const now = Date.now()
    for (const saved of f.instances) {
      if (typeof saved?.id !== 'string' || typeof saved.service !== 'string' || typeof saved.tokenHash !== 'string') continue
      // A lease that was running out keeps its end (a daemon restarting every few seconds must not
      // keep a dead instance forever); one held by a stream at save time gets restoreTtlMs.
      const end = f.expires?.[saved.id]
      const ttl = typeof end === 'number' ? Math.min(end - now, this.restoreTtlMs) : this.restoreTtlMs
      if (ttl <= 0) continue
      const rec = withoutHolder(saved)
      const lease: Lease = { rec, expiresAt: now + ttl }
      const timer = setTimeout(() => {
        void this.mutate(async () => {
          if (this.instances.get(rec.id) !== lease || lease.timer !== timer) return
          await this.remove(rec.id)
        }).catch(() => {})
      }, ttl)
      timer.unref()
      lease.timer = timer
      this.instances.set(rec.id, lease)
    }
    if (this.instances.size > 0) {
      this.logger.info(`embedded store: restored ${this.instances.size} registrations saved ${f.savedAt}; each ends within ${this.restoreTtlMs} ms unless its instance watches again`)
      // Their ends on disk now: a crash before the next save must not restart them again.
      this.registrySaver.soon()
    }
  }

  /**
   * Takes the next revision (persisting a new reservation first when the block is used up) and
   * emits the event with it. revision() moves in the same tick as the event, so whoever reads it
   * has seen every change up to that number.
   */
  private async nextRevision(event: (revision: number) => StoreEvent): Promise<void> {
    const revision = this.rev + 1
    if (revision > this.reserved) {
      const before = this.reserved
      this.reserved = revision + REVISION_BLOCK
      try {
        await this.writePolicyFile()
      } catch (err) {
        // Not on disk: the reservation does not hold, so the next change must try again.
        this.reserved = before
        throw err
      }
    }
    this.rev = revision
    this.emit(event(revision))
  }

  private emit(e: StoreEvent): void {
    for (const l of this.listeners) {
      try {
        l(e)
      } catch (err) {
        this.logger.error(`embedded store: event listener failed: ${(err as Error).message}`)
      }
    }
  }

  private writePolicyFile(): Promise<void> {
    const f: PolicyFile = { format: FORMAT, version: this.policy.version, revision: this.reserved, resources: this.policy.resources }
    // 0600 like every file here: the policy names services, addresses and JWT issuers.
    return writeFileAtomic(this.policyFile, JSON.stringify(f), 0o600)
  }

  private async readHistoryIndex(): Promise<HistoryEntry[]> {
    const entries: HistoryEntry[] = []
    for (const name of await readdir(this.historyDir)) {
      const m = /^(\d+)\.json$/.exec(name)
      if (!m) continue
      const h = await readJson<HistoryFile>(join(this.historyDir, name)).catch((err: Error) => {
        this.logger.warn(`embedded store: skipping unreadable history entry ${name}: ${err.message}`)
        return undefined
      })
      if (!h || h.version !== Number(m[1]) || typeof h.at !== 'string' || !Array.isArray(h.resources)) continue
      entries.push({ version: h.version, at: h.at, action: h.action, summary: String(h.summary ?? '') })
    }
    entries.sort((a, b) => b.version - a.version)
    this.historyIndex = entries
    await this.pruneHistory()
    return this.historyIndex
  }

  private async pruneHistory(): Promise<void> {
    while (this.historyIndex.length > HISTORY_KEPT) {
      const old = this.historyIndex.pop()!
      await rm(join(this.historyDir, `${old.version}.json`), { force: true })
    }
  }
}

function withoutHolder(rec: InstanceRecord): InstanceRecord {
  const { heldBy: _, ...rest } = rec
  return rest
}

function jsonClone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}
