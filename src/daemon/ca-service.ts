// The daemon as certificate authority (identity issue; docs/design/identity-plan.md): it keeps the
// CA (made into <dataDir>/ca/ at first start, or given by the operator), signs each instance's CSR
// for the identity its registration holds (never the one the CSR asks for), rate-limits signing
// per instance, and runs trust-bundle rotation with overlap: rotate adds a new root and signs with
// it, retire drops the old one. The bundle goes to every watch stream that asked for it.
// On a store daemons share (etcd), the CA lives in the store instead (ca-shared.ts): rotate and
// retire are compare-and-sets on it, and every daemon follows its changes and pushes the bundle.
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { ServerResponse } from 'node:http'
import { CertificateAuthority } from '../identity/ca.js'
import { addRoot, newBundle, removeRoot, type TrustBundle } from '../identity/bundle.js'
import { workloadId, type SpiffeId } from '../identity/spiffe-id.js'
import { isWeftError } from '../errors/index.js'
import { DAEMON_NAMESPACE, DAEMON_SERVICE, type BundleMessage, type SvidResponse } from '../control/protocol.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import type { Logger } from '../util/logger.js'
import { caFileOf, openSharedCa, readCaDoc, sameRoots, sharedOperatorBundle, type CaFile, type CaState, type SharedCaDocs } from './ca-shared.js'
import { HttpError } from './http-error.js'
import type { InstanceRecord, SharedDocVersion } from './store.js'

export interface CaOptions {
  dataDir: string
  /** Default weft.local. Fixed once the CA exists (its root carries it). */
  trustDomain?: string
  /** Lifetime of the SVIDs signed. Default 24 h. */
  svidTtlMs?: number
  /** An operator CA instead of one made here: a root, or an intermediate with its chain and roots. */
  operator?: { certPem: string; keyPem: string; chainPem?: string; bundlePem?: string }
  /** The store's CA documents when daemons share it (etcd): used instead of the files in <dataDir>/ca/. */
  shared?: SharedCaDocs
  logger: Logger
}

/** Signing requests allowed per instance in a minute (renewals come every ~12 h). */
const SIGNS_PER_MINUTE = 6

/**
 * The per-instance limit for an SVID lifetime: 6 a minute, or more when the lifetime is so short
 * (a test mesh's seconds) that renewals at half-life, retries and a rotation's re-issue would pass
 * 6 — then four lifetimes' worth a minute (about eight renewals' worth).
 */
function signsPerMinute(ttlMs: number | undefined): number {
  return ttlMs === undefined ? SIGNS_PER_MINUTE : Math.max(SIGNS_PER_MINUTE, Math.ceil((4 * 60_000) / ttlMs))
}

export class CaService {
  private active!: CertificateAuthority
  private previous: CertificateAuthority | undefined
  private bundleNow!: TrustBundle
  private readonly subscribers = new Set<ServerResponse>()
  private readonly signs = new Map<string, number[]>()
  private readonly file: string
  /** Shared store: the revision of the CA document the state above is. */
  private rev = 0
  /** A rotate or retire is being written (one at a time per daemon; the store's CAS orders daemons). */
  private changing = false

  private constructor(private readonly o: CaOptions) {
    this.file = join(o.dataDir, 'ca', 'ca.json')
  }

  static async open(o: CaOptions): Promise<CaService> {
    const s = new CaService(o)
    await s.load()
    return s
  }

  get trustDomain(): string {
    return this.active.trustDomain
  }

  get bundle(): TrustBundle {
    return this.bundleNow
  }

  get operatorSupplied(): boolean {
    return this.o.operator !== undefined
  }

  private async load(): Promise<void> {
    const { operator, logger, shared } = this.o
    const saved = await this.readJson<CaFile>(this.file)
    if (shared && !operator) return this.loadShared(shared, saved)
    if (operator) {
      this.active = await CertificateAuthority.fromPem({ certPem: operator.certPem, keyPem: operator.keyPem, ...(operator.chainPem ? { chainPem: operator.chainPem } : {}), ...(operator.bundlePem ? { bundleRoots: operator.bundlePem } : {}), ...(this.o.trustDomain ? { trustDomain: this.o.trustDomain } : {}) })
      // The sequence must keep growing across restarts when the operator's roots change (a restart
      // with a --ca-bundle of both roots is how an operator CA rotates: instances take a bundle
      // only with a higher sequence), and stays when they do not. It is kept in a file of its own:
      // a CA made here earlier (ca.json, with its key) is left as it was.
      const td = this.active.trustDomain
      const roots = this.active.toPem().bundleRoots
      const files = [await this.readJson<{ bundle: TrustBundle }>(this.operatorFile), saved].map((f) => f?.bundle)
      if (shared) {
        // Shared store: the sequence is the store's (files only raise it), so daemons given the same
        // CA serve the same bundle; changing roots means restarting every daemon with the new files.
        const r = await sharedOperatorBundle(shared, roots, td, files)
        this.bundleNow = r.bundle
        logger.info(`CA: operator-supplied, trust domain ${td}, ${r.bundle.roots.length} root(s) in the bundle (sequence ${r.bundle.sequence} in the shared store${r.same ? ', unchanged' : ''})`)
        return
      }
      const last = files.filter((b): b is TrustBundle => b !== undefined && b.trustDomain === td)
      const same = last[0] !== undefined && sameRoots(last[0].roots, roots)
      const seq = same ? last[0]!.sequence : Math.max(0, ...last.map((b) => b.sequence)) + 1
      this.bundleNow = newBundle(td, roots, seq)
      if (!same) await this.saveOperatorBundle(this.bundleNow)
      logger.info(`CA: operator-supplied, trust domain ${td}, ${this.bundleNow.roots.length} root(s) in the bundle (sequence ${seq}${same ? ', unchanged' : ''})`)
      return
    }
    if (saved) {
      if (this.o.trustDomain && this.o.trustDomain !== saved.trustDomain) {
        throw new Error(`the CA in ${this.file} is for trust domain ${saved.trustDomain}, not ${this.o.trustDomain} (a trust domain cannot change under a running mesh; use another data dir for another one)`)
      }
      this.active = await CertificateAuthority.fromPem(saved.active)
      if (saved.previous) this.previous = await CertificateAuthority.fromPem(saved.previous)
      this.bundleNow = saved.bundle
      return
    }
    const td = this.o.trustDomain ?? 'weft.local'
    const root = await CertificateAuthority.createRoot({ trustDomain: td })
    const bundle = newBundle(td, root.toPem().bundleRoots, 1)
    await this.save(root, undefined, bundle)
    this.active = root
    this.bundleNow = bundle
    logger.info(`CA: made a new root for trust domain ${td} (${this.file})`)
  }

  /** The CA of the shared store (ca-shared.ts), then every change to it, from any daemon. */
  private async loadShared(shared: SharedCaDocs, saved: CaFile | undefined): Promise<void> {
    const { state, revision } = await openSharedCa(shared.state, saved, this.o.trustDomain, this.o.logger)
    this.set(state, revision)
    this.o.logger.info(`CA: from the shared store, trust domain ${this.trustDomain}, ${this.bundleNow.roots.length} root(s) in the bundle (sequence ${this.bundleNow.sequence})`)
    await shared.state.watch(revision, (doc) => void this.follow(doc).catch((err: Error) => this.o.logger.error(`CA: following the shared CA: ${err.message}`)))
  }

  /** A daemon (another, or this one before its write returned) rotated or retired: sign as it does and push the bundle. */
  private async follow(doc: SharedDocVersion): Promise<void> {
    if (doc.revision <= this.rev) return
    let state: CaState
    try {
      state = await readCaDoc(doc.value, `the CA in the shared store (revision ${doc.revision})`)
      if (state.active.trustDomain !== this.trustDomain) throw new Error(`it is for trust domain ${state.active.trustDomain}, not ${this.trustDomain}`)
    } catch (err) {
      this.o.logger.error(`CA: ignoring a change of the shared CA: ${(err as Error).message}; this daemon keeps signing with the CA it has`)
      return
    }
    // A later change may have been taken while this one was read.
    if (doc.revision <= this.rev) return
    const before = this.bundleNow.sequence
    this.set(state, doc.revision)
    if (state.bundle.sequence === before) return
    this.broadcast()
    this.o.logger.info(`CA: the shared CA changed (a rotate or retire); ${state.bundle.roots.length} root(s) trusted (bundle sequence ${state.bundle.sequence})`)
  }

  private set(s: CaState, revision: number): void {
    this.active = s.active
    this.previous = s.previous
    this.bundleNow = s.bundle
    this.rev = revision
  }

  /**
   * Stores a rotate or retire step, then uses it (a root that signs is always stored first):
   * in the data dir, or as a compare-and-set on the shared CA, which another daemon's change since
   * `base` makes fail (409). Resolves with whether this call applied it (a shared store's watch
   * may have applied it already).
   */
  private async commit(next: CaState, base: number): Promise<boolean> {
    const shared = this.o.shared?.state
    if (!shared) {
      await this.save(next.active, next.previous, next.bundle)
      this.set(next, 0)
      return true
    }
    const revision = await shared.compareAndSet(JSON.stringify(caFileOf(next)), base)
    if (revision === undefined) throw new HttpError(409, 'WEFT_ERR_CONFLICT', 'the CA changed meanwhile through another daemon sharing the store (a rotate or retire there); see `weft ca bundle` and try again if still needed')
    if (revision <= this.rev) return false
    this.set(next, revision)
    return true
  }

  /** One rotate or retire at a time; `step` sees the state it changes, `commit` refuses a stale one. */
  private async change(step: (now: CaState) => Promise<CaState>): Promise<boolean> {
    if (this.changing) throw new HttpError(409, 'WEFT_ERR_CONFLICT', 'a rotate or retire is being written; try again')
    this.changing = true
    try {
      const base = this.rev
      const next = await step({ active: this.active, previous: this.previous, bundle: this.bundleNow })
      if (base !== this.rev) throw new HttpError(409, 'WEFT_ERR_CONFLICT', 'the CA changed meanwhile through another daemon sharing the store; see `weft ca bundle` and try again if still needed')
      return await this.commit(next, base)
    } finally {
      this.changing = false
    }
  }

  private get operatorFile(): string {
    return join(dirname(this.file), 'operator-bundle.json')
  }

  private async readJson<T>(file: string): Promise<T | undefined> {
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    })
    if (text === undefined) return undefined
    try {
      return JSON.parse(text) as T
    } catch (err) {
      throw new Error(`${file} is not valid JSON (${(err as Error).message}); restore it from a backup, or move it away to make a new CA (every instance then needs new certificates)`)
    }
  }

  /** Writes the CA's state before it is used: a root that signs is always on disk first. */
  private async save(active: CertificateAuthority, previous: CertificateAuthority | undefined, bundle: TrustBundle): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 })
    const state = caFileOf({ active, previous, bundle })
    await writeFileAtomic(this.file, JSON.stringify(state, null, 2) + '\n', 0o600)
  }

  /** Operator CA: only the bundle's sequence is ours to keep; the operator's key is not copied anywhere. */
  private async saveOperatorBundle(bundle: TrustBundle): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 })
    await writeFileAtomic(this.operatorFile, JSON.stringify({ trustDomain: bundle.trustDomain, bundle }, null, 2) + '\n', 0o600)
  }

  /** The SPIFFE ID a registration holds: its namespace and service, in this CA's trust domain. */
  idOf(rec: InstanceRecord): string {
    return workloadId(this.trustDomain, rec.namespace, rec.service).toString()
  }

  /** POST /v1/instances/:id/svid: signs `csrPem` for the instance's own identity. */
  async sign(rec: InstanceRecord, csrPem: string): Promise<SvidResponse> {
    this.rateLimit(rec.id)
    try {
      const signed = await this.active.sign(csrPem, { id: workloadId(this.trustDomain, rec.namespace, rec.service), ...(this.o.svidTtlMs ? { ttlMs: this.o.svidTtlMs } : {}) })
      return { certChain: signed.certChainPem, bundle: this.bundleMessage().bundle, notBefore: new Date(signed.notBefore).toISOString(), notAfter: new Date(signed.notAfter).toISOString() }
    } catch (err) {
      if (isWeftError(err) && err.code === 'WEFT_ERR_FORBIDDEN') throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `instance ${rec.id} may have only its own identity: ${err.message}`, err.details)
      if (isWeftError(err) && err.code === 'WEFT_ERR_INVALID_ARG') throw new HttpError(400, 'WEFT_ERR_INVALID_ARG', `csr: ${err.message}`)
      throw err
    }
  }

  private rateLimit(id: string): void {
    const now = Date.now()
    const recent = (this.signs.get(id) ?? []).filter((t) => now - t < 60_000)
    const limit = signsPerMinute(this.o.svidTtlMs)
    if (recent.length >= limit) {
      throw new HttpError(429, 'WEFT_ERR_RATE_LIMITED', `instance ${id} asked for ${recent.length} certificates in the last minute (limit ${limit}); retry later`, undefined, { 'retry-after': '10' })
    }
    recent.push(now)
    this.signs.set(id, recent)
    if (this.signs.size > 10_000) for (const [k, v] of this.signs) if (v.every((t) => now - t >= 60_000)) this.signs.delete(k)
  }

  /**
   * Rotation step 1: a new root joins the bundle (both trusted) and signs from now on; instances
   * renew onto it over their normal renewal (or at once with `weft ca rotate` then a restart).
   */
  async rotate(): Promise<TrustBundle> {
    if (this.o.operator) throw new HttpError(409, 'WEFT_ERR_CONFLICT', 'the CA is operator-supplied (--ca-cert): rotate it by restarting the daemon with the new CA and a --ca-bundle holding both roots')
    if (this.previous) throw new HttpError(409, 'WEFT_ERR_CONFLICT', 'a rotation is already under way: retire the old root first (weft ca retire)')
    // Stored before it signs anything: a certificate from a root lost in a crash would never chain.
    const applied = await this.change(async (now) => {
      const next = await CertificateAuthority.createRoot({ trustDomain: now.active.trustDomain })
      return { active: next, previous: now.active, bundle: addRoot(now.bundle, next.toPem().certPem) }
    })
    if (applied) this.broadcast()
    this.o.logger.info(`CA: rotated; signing with a new root, both roots trusted (bundle sequence ${this.bundleNow.sequence})`)
    return this.bundleNow
  }

  /** Rotation step 2: the old root leaves the bundle; certificates it signed are refused from then on. */
  async retire(): Promise<TrustBundle> {
    if (!this.previous) throw new HttpError(409, 'WEFT_ERR_CONFLICT', 'no rotation under way: nothing to retire (weft ca rotate first)')
    const applied = await this.change(async (now) => ({ active: now.active, previous: undefined, bundle: removeRoot(now.bundle, now.previous!.toPem().certPem) }))
    if (applied) this.broadcast()
    this.o.logger.info(`CA: retired the old root (bundle sequence ${this.bundleNow.sequence})`)
    return this.bundleNow
  }

  bundleMessage(version = 0): BundleMessage {
    const b = this.bundleNow
    return { type: 'bundle', version, bundle: { trustDomain: b.trustDomain, sequence: b.sequence, roots: [...b.roots] } }
  }

  /** A watch stream that asked for the bundle: gets it now and on every rotation step. */
  subscribe(res: ServerResponse, version: number): () => void {
    res.write(JSON.stringify(this.bundleMessage(version)) + '\n')
    this.subscribers.add(res)
    return () => this.subscribers.delete(res)
  }

  private broadcast(): void {
    const line = JSON.stringify(this.bundleMessage()) + '\n'
    for (const res of this.subscribers) if (!res.destroyed) res.write(line)
    for (const l of this.bundleListeners) l(this.bundleNow)
  }

  private readonly bundleListeners = new Set<(bundle: TrustBundle) => void>()

  /**
   * The daemon's own certificate (its API's TLS side, daemon-identity.ts): signed for the daemon's
   * ID, `spiffe://<td>/ns/weft-system/sa/weft-daemon`, with no registration and no rate limit (it
   * is not an instance's call); told of every bundle change to re-issue onto a new root.
   */
  async signDaemon(csrPem: string, onBundle: (bundle: TrustBundle) => void): Promise<{ certChainPem: string[]; bundle: TrustBundle; notBefore: number; notAfter: number }> {
    this.bundleListeners.add(onBundle)
    const signed = await this.active.sign(csrPem, { id: daemonId(this.trustDomain), ...(this.o.svidTtlMs ? { ttlMs: this.o.svidTtlMs } : {}) })
    return { certChainPem: signed.certChainPem, bundle: this.bundleNow, notBefore: signed.notBefore, notAfter: signed.notAfter }
  }
}

/** The daemon's SPIFFE ID in a trust domain (docs/design/identity-plan.md). */
export function daemonId(trustDomain: string): SpiffeId {
  return workloadId(trustDomain, DAEMON_NAMESPACE, DAEMON_SERVICE)
}
