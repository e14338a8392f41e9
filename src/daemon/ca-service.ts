// The daemon as certificate authority (identity issue; docs/design/identity-plan.md): it keeps the
// CA (made into <dataDir>/ca/ at first start, or given by the operator), signs each instance's CSR
// for the identity its registration holds (never the one the CSR asks for), rate-limits signing
// per instance, and runs trust-bundle rotation with overlap: rotate adds a new root and signs with
// it, retire drops the old one. The bundle goes to every watch stream that asked for it.
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { ServerResponse } from 'node:http'
import { CertificateAuthority, type CaPem } from '../identity/ca.js'
import { addRoot, newBundle, removeRoot, type TrustBundle } from '../identity/bundle.js'
import { workloadId } from '../identity/spiffe-id.js'
import { isWeftError } from '../errors/index.js'
import type { BundleMessage, SvidResponse } from '../control/protocol.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import type { Logger } from '../util/logger.js'
import { HttpError } from './http-error.js'
import type { InstanceRecord } from './store.js'

export interface CaOptions {
  dataDir: string
  /** Default weft.local. Fixed once the CA exists (its root carries it). */
  trustDomain?: string
  /** Lifetime of the SVIDs signed. Default 24 h. */
  svidTtlMs?: number
  /** An operator CA instead of one made here: a root, or an intermediate with its chain and roots. */
  operator?: { certPem: string; keyPem: string; chainPem?: string; bundlePem?: string }
  logger: Logger
}

/** What <dataDir>/ca/ca.json holds (0600: it has the signing key). */
interface CaFile {
  trustDomain: string
  /** The CA that signs now. */
  active: CaPem
  /** The CA replaced by the last rotate, kept until retire drops its root. */
  previous?: CaPem
  bundle: TrustBundle
}

/** Signing requests allowed per instance in a minute (renewals come every ~12 h). */
const SIGNS_PER_MINUTE = 6

export class CaService {
  private active!: CertificateAuthority
  private previous: CertificateAuthority | undefined
  private bundleNow!: TrustBundle
  private readonly subscribers = new Set<ServerResponse>()
  private readonly signs = new Map<string, number[]>()
  private readonly file: string

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
    const { operator, logger } = this.o
    const saved = await this.readJson<CaFile>(this.file)
    if (operator) {
      this.active = await CertificateAuthority.fromPem({ certPem: operator.certPem, keyPem: operator.keyPem, ...(operator.chainPem ? { chainPem: operator.chainPem } : {}), ...(operator.bundlePem ? { bundleRoots: operator.bundlePem } : {}), ...(this.o.trustDomain ? { trustDomain: this.o.trustDomain } : {}) })
      // The sequence must keep growing across restarts when the operator's roots change (a restart
      // with a --ca-bundle of both roots is how an operator CA rotates: instances take a bundle
      // only with a higher sequence), and stays when they do not. It is kept in a file of its own:
      // a CA made here earlier (ca.json, with its key) is left as it was.
      const td = this.active.trustDomain
      const roots = this.active.toPem().bundleRoots
      const last = [await this.readJson<{ bundle: TrustBundle }>(this.operatorFile), saved].map((f) => f?.bundle).filter((b): b is TrustBundle => b !== undefined && b.trustDomain === td)
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
    const state: CaFile = { trustDomain: active.trustDomain, active: active.toPem(), ...(previous ? { previous: previous.toPem() } : {}), bundle }
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
    if (recent.length >= SIGNS_PER_MINUTE) {
      throw new HttpError(429, 'WEFT_ERR_RATE_LIMITED', `instance ${id} asked for ${recent.length} certificates in the last minute (limit ${SIGNS_PER_MINUTE}); retry later`, undefined, { 'retry-after': '10' })
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
    const next = await CertificateAuthority.createRoot({ trustDomain: this.trustDomain })
    const bundle = addRoot(this.bundleNow, next.toPem().certPem)
    // On disk before it signs anything: a certificate from a root lost in a crash would never chain.
    await this.save(next, this.active, bundle)
    this.previous = this.active
    this.active = next
    this.bundleNow = bundle
    this.broadcast()
    this.o.logger.info(`CA: rotated; signing with a new root, both roots trusted (bundle sequence ${this.bundleNow.sequence})`)
    return this.bundleNow
  }

  /** Rotation step 2: the old root leaves the bundle; certificates it signed are refused from then on. */
  async retire(): Promise<TrustBundle> {
    if (!this.previous) throw new HttpError(409, 'WEFT_ERR_CONFLICT', 'no rotation under way: nothing to retire (weft ca rotate first)')
    const bundle = removeRoot(this.bundleNow, this.previous.toPem().certPem)
    await this.save(this.active, undefined, bundle)
    this.bundleNow = bundle
    this.previous = undefined
    this.broadcast()
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
  }
}

function sameRoots(a: readonly string[], b: readonly string[]): boolean {
  const norm = (l: readonly string[]) => l.map((p) => p.trim()).sort().join('\n')
  return norm(a) === norm(b)
}
