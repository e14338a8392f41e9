// The daemon's JWT-SVID issuer (identity issue): an ES256 key made at first start into
// <dataDir>/ca/jwt-key.json (0600), or, on a store daemons share (etcd), into the store, so every
// daemon signs with one key and serves one JWKS; tokens signed for the identity an instance's
// registration holds and an audience it names, and the public JWKS that verifiers configure.
//
// Rotation prepared → active, with overlap (jwt-keys.ts holds the format and the times): `rotate`
// makes a new key that the JWKS publishes at once next to the old one, which keeps signing until
// the activation (45 s after the rotate: longer than a verifier waits before fetching a JWKS again
// on an unknown kid), when the new key begins to sign; `retire` drops the old key, whose tokens are
// refused from then on. Retire is refused until the old key's tokens can all have expired (its
// last ones signed at the activation: + 5 min lifetime + 30 s clock tolerance) unless forced; a
// forced retire before the activation makes the new key sign at once. On a shared store both
// steps are compare-and-sets on the `jwt-key` document; every daemon follows its changes (watch),
// and GET /v1/jwks reads it first; all of them compute the activation from the stored rotatedAt,
// so they switch keys together.
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Jwks, JwtSvid, JwtSvidIssuer } from '../identity/jwt/jwt-svid.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { silentLogger, type Logger } from '../util/logger.js'
import { badRequest, HttpError } from './http-error.js'
import { ACTIVATE_DELAY_MS, OLD_TOKENS_VALID_MS, activatesAt, jwksOf, jwtKeySetText, newJwtKeySet, readJwtKeySet, viewOf, type JwtKeySet, type JwtKeysView } from './jwt-keys.js'
import type { SharedDoc, SharedDocVersion } from './store.js'

const AUDIENCE = /^[\x21-\x7e]{1,256}$/
/** Longest wait for the shared document before serving the JWKS this daemon holds. */
const SHARED_READ_MS = 1_000

export interface JwtServiceOptions {
  /** From a rotate until its new key signs. Default ACTIVATE_DELAY_MS (45 s); tests shorten it. */
  activateDelayMs?: number
  /** Clock (ms since the epoch), for tests. Default Date.now. */
  now?: () => number
}

export class JwtService {
  private keys!: JwtKeySet
  /** During a rotation, the old key's signer until `switchAt`; then (and otherwise) keys.current signs. */
  private oldSigner: JwtSvidIssuer | undefined
  private switchAt = 0
  /** Shared store: the revision of the document `keys` is. */
  private rev = 0
  /** A rotate or retire is being written (one at a time per daemon; the store's CAS orders daemons). */
  private changing = false
  /** A read of the shared document in flight (concurrent JWKS requests share it). */
  private reading: Promise<void> | undefined

  private constructor(
    private readonly file: string,
    private readonly trustDomain: string,
    private readonly shared: SharedDoc | undefined,
    private readonly logger: Logger,
    private readonly activateDelayMs: number,
    private readonly now: () => number,
  ) {}

  /** `shared`: the store's `jwt-key` document when daemons share the store; else the data dir's file. */
  static async open(dataDir: string, trustDomain: string, shared?: SharedDoc, logger: Logger = silentLogger, options: JwtServiceOptions = {}): Promise<JwtService> {
    const delay = options.activateDelayMs ?? ACTIVATE_DELAY_MS
    if (!Number.isFinite(delay) || delay < 0) throw new Error(`activateDelayMs must be zero or more milliseconds (got ${delay})`)
    const file = join(dataDir, 'ca', 'jwt-key.json')
    const s = new JwtService(file, trustDomain, shared, logger, delay, options.now ?? (() => Date.now()))
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    })
    if (shared) {
      // Create-only: of daemons starting together, one key wins and the others adopt it. A key this
      // daemon made before it shared the store is the one it offers, so verifiers' cached JWKS hold.
      let inForce = await shared.get()
      if (!inForce) {
        const offer = text !== undefined ? await readJwtKeySet(text, trustDomain, file) : await newJwtKeySet(trustDomain)
        inForce = await shared.createIfAbsent(jwtKeySetText(offer))
      }
      s.set(await readJwtKeySet(inForce.value, trustDomain, 'the JWT-SVID key in the shared store'), inForce.revision)
      await shared.watch(inForce.revision, (doc) => void s.follow(doc))
      return s
    }
    if (text !== undefined) {
      s.set(await readJwtKeySet(text, trustDomain, file), 0)
      return s
    }
    const made = await newJwtKeySet(trustDomain)
    await s.save(made)
    s.set(made, 0)
    return s
  }

  /** `spiffe://<td>`: the `iss` a RequestAuthentication for JWT-SVIDs names. */
  get issuerName(): string {
    return this.keys.current.issuer
  }

  /** GET /v1/jwks: the newest key, then the one a rotation replaced while it is published. */
  async jwks(): Promise<Jwks> {
    await this.catchUp()
    return jwksOf(this.keys)
  }

  /** GET /v1/jwt/keys: the kids, which one signs now, the rotation under way, when the new key signs and when retire needs no force. */
  async view(): Promise<JwtKeysView> {
    await this.catchUp()
    return viewOf(this.keys, this.activateDelayMs, this.now())
  }

  /** POST /v1/instances/:id/jwt-svid body { audience } for the instance whose SPIFFE ID is `subject`. */
  async sign(subject: string, body: Record<string, unknown>): Promise<JwtSvid> {
    for (const k of Object.keys(body)) if (k !== 'audience' && k !== 'ttlMs') throw badRequest(`jwt-svid: unknown field "${k}" (allowed: audience, ttlMs)`)
    const aud = body.audience
    const list = Array.isArray(aud) ? aud : [aud]
    if (list.length === 0 || list.length > 16 || !list.every((a) => typeof a === 'string' && AUDIENCE.test(a))) throw badRequest('jwt-svid: audience must be a string (or 1 to 16 strings) of printable characters, at most 256 each')
    const ttl = body.ttlMs
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 1000 || ttl > 5 * 60_000)) throw badRequest('jwt-svid: ttlMs must be from 1000 to 300000')
    const signer = this.oldSigner !== undefined && this.now() < this.switchAt ? this.oldSigner : this.keys.current
    return signer.sign({ subject, audience: list as string[], ...(ttl !== undefined ? { ttlMs: ttl as number } : {}) })
  }

  /**
   * POST /v1/jwt/rotate. Rotation step 1: a new key is published in the JWKS at once, next to the
   * old one, which keeps signing until the activation (rotatedAt + 45 s); then the new key signs.
   * Tokens already issued keep verifying. Stored before it is published.
   */
  async rotate(): Promise<JwtKeysView> {
    await this.change(async (now) => {
      if (now.previous) throw conflict(`a JWT key rotation is already under way (the old key ${now.previous.jwk.kid} is still published): retire it first (weft jwt retire)`)
      const next = await newJwtKeySet(this.trustDomain)
      return { current: next.current, previous: { jwk: now.current.publicKey(), signer: now.current }, rotatedAt: this.now() }
    })
    const view = viewOf(this.keys, this.activateDelayMs, this.now())
    this.logger.info(`JWT-SVID: rotated; the JWKS publishes the new key ${view.kid} from now on and it signs from ${view.activatesAt} (the old key ${view.previousKid} signs until then, and is published until retired: weft jwt retire)`)
    return view
  }

  /**
   * POST /v1/jwt/retire body { force? }. Rotation step 2: the old key leaves the JWKS; tokens it
   * signed are refused from then on (by a verifier once its cached JWKS is refreshed). Refused
   * while such tokens may still be valid (until the activation + 5 min 30 s), unless `force` (a
   * leaked key: make its tokens fail now; before the activation, the new key then signs at once).
   */
  async retire(body: Record<string, unknown>): Promise<JwtKeysView> {
    for (const k of Object.keys(body)) if (k !== 'force') throw badRequest(`jwt retire: unknown field "${k}" (allowed: force)`)
    if (body.force !== undefined && typeof body.force !== 'boolean') throw badRequest('jwt retire: force must be true or false')
    const force = body.force === true
    let retired = ''
    let early = false
    await this.change(async (now) => {
      if (!now.previous) throw conflict('no JWT key rotation under way: nothing to retire (weft jwt rotate first)')
      const from = activatesAt(now, this.activateDelayMs)!
      const after = from + OLD_TOKENS_VALID_MS
      const t = this.now()
      if (!force && t < after) {
        throw conflict(`tokens signed by the old JWT key ${now.previous.jwk.kid} may still be valid until ${new Date(after).toISOString()} (it signs until the new key's activation at ${new Date(from).toISOString()}, then its tokens' 5 min lifetime and 30 s of clock tolerance): retire then, or now with force (weft jwt retire --force), which makes them fail`, { retireAfter: new Date(after).toISOString() })
      }
      retired = now.previous.jwk.kid!
      early = t < from
      return { current: now.current }
    })
    this.logger.info(`JWT-SVID: retired the old key ${retired}${force ? ' (forced)' : ''}; the JWKS publishes only ${this.keys.current.kid}${early ? ', which signs from now on (before its activation time: a verifier that fetched the JWKS in the last 30 s refuses its tokens until it fetches it again)' : ''}`)
    return viewOf(this.keys, this.activateDelayMs, this.now())
  }

  private set(keys: JwtKeySet, revision: number): void {
    this.keys = keys
    this.rev = revision
    // Precomputed so that sign() only compares the clock with a number.
    this.oldSigner = keys.previous?.signer
    this.switchAt = activatesAt(keys, this.activateDelayMs) ?? 0
  }

  /**
   * One rotate or retire at a time: `step` sees the set it changes (after catching up with the
   * shared store); the new set is stored, then used. On a shared store the write is a
   * compare-and-set that another daemon's change since then makes fail (409).
   */
  private async change(step: (now: JwtKeySet) => Promise<JwtKeySet>): Promise<void> {
    if (this.changing) throw conflict('a JWT key rotate or retire is being written; try again')
    this.changing = true
    try {
      await this.catchUp()
      const base = this.rev
      const next = await step(this.keys)
      const stale = () => conflict('the JWT key set changed meanwhile through another daemon sharing the store (a rotate or retire there); see `weft jwt keys` and try again if still needed')
      if (base !== this.rev) throw stale()
      if (!this.shared) {
        await this.save(next)
        this.set(next, 0)
        return
      }
      const revision = await this.shared.compareAndSet(jwtKeySetText(next), base)
      if (revision === undefined) throw stale()
      // The watch may have delivered this write (or a later one) already.
      if (revision > this.rev) this.set(next, revision)
    } finally {
      this.changing = false
    }
  }

  /** A change of the shared document (another daemon's, or this one's): sign and publish as it says. */
  private async follow(doc: SharedDocVersion): Promise<void> {
    if (doc.revision <= this.rev) return
    let keys: JwtKeySet
    try {
      keys = await readJwtKeySet(doc.value, this.trustDomain, `the JWT-SVID key set in the shared store (revision ${doc.revision})`)
    } catch (err) {
      this.logger.error(`JWT-SVID: ignoring a change of the shared key set: ${(err as Error).message}; this daemon keeps the keys it has`)
      return
    }
    // A later change may have been taken while this one was read.
    if (doc.revision <= this.rev) return
    const before = this.keys.current.kid
    this.set(keys, doc.revision)
    if (keys.current.kid !== before) this.logger.info(`JWT-SVID: the shared key set changed (a rotate); publishing the new key ${keys.current.kid}, which signs from ${new Date(this.switchAt).toISOString()}`)
  }

  /** Shared store: take a change the watch has not delivered yet (bounded wait; on failure, the set held). */
  private catchUp(): Promise<void> {
    if (!this.shared || this.reading) return this.reading ?? Promise.resolve()
    const reading = this.readShared(this.shared).finally(() => {
      if (this.reading === reading) this.reading = undefined
    })
    this.reading = reading
    return reading
  }

  private async readShared(shared: SharedDoc): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    try {
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), SHARED_READ_MS)
        timer.unref()
      })
      const cur = await Promise.race([shared.get(), late])
      if (cur) await this.follow(cur)
    } catch (err) {
      this.logger.warn(`JWT-SVID: cannot read the shared key set (${(err as Error).message}); using the one held`)
    } finally {
      clearTimeout(timer)
    }
  }

  /** The data dir's file (0600): written before the set is used, so a key that signs is on disk first. */
  private async save(keys: JwtKeySet): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 })
    await writeFileAtomic(this.file, jwtKeySetText(keys) + '\n', 0o600)
  }
}

function conflict(message: string, details?: unknown): HttpError {
  return new HttpError(409, 'WEFT_ERR_CONFLICT', message, details)
}
