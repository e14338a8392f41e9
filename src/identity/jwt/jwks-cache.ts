// The JWKS caches: one per jwksUri, owned by a JwksRegistry that outlives config versions, so a new
// config keeps warm keys. Refreshes are lazy (no timers), single-flight and rate-limited; a failed,
// empty or malformed refresh keeps the previous keys; with no keys ever loaded, tokens fail closed.
import { Agent } from 'undici'
import { invalidArg } from '../../errors/index.js'
import { silentLogger, type Logger } from '../../util/logger.js'
import { fetchJwks } from './jwks-fetch.js'
import { KeySet } from './key-set.js'
import type { KeyLookup, KeySource } from './key-source.js'
import { shown } from './shown.js'

export interface JwksCacheOptions {
  /** Age after which a set is refreshed, in the background, on its next use. Default 10 min. */
  maxAgeMs?: number
  /**
   * Least time between two fetches of one URI, whatever asks (an unknown kid, the max age, a
   * retry after a failure, an empty set). Default 30 s.
   */
  cooldownMs?: number
  /** Whole-download timeout (connect, headers and body). Default 5 s. */
  timeoutMs?: number
  /** Unknown kids remembered (so a repeated one triggers no refresh). Default 128. */
  negativeCacheSize?: number
  /** How long an unknown kid is remembered. Default 300 s. */
  negativeCacheTtlMs?: number
  /** Largest key set document accepted. Default 512 KiB. */
  maxBytes?: number
  /** Most keys kept from one document. Default 100. */
  maxKeys?: number
  logger?: Logger
  /** Clock (ms since the epoch), for tests. Default Date.now. */
  now?: () => number
}

type Settings = Required<Omit<JwksCacheOptions, 'logger' | 'now'>>

const DEFAULTS: Settings = {
  maxAgeMs: 10 * 60_000,
  cooldownMs: 30_000,
  timeoutMs: 5_000,
  negativeCacheSize: 128,
  negativeCacheTtlMs: 300_000,
  maxBytes: 512 * 1024,
  maxKeys: 100,
}

/** What a cache has done, for tests, `weft explain` and metrics. */
export interface JwksStatus {
  readonly uri: string
  /** Keys installed now (0: none ever loaded). */
  readonly keys: number
  readonly loadedAt: number | undefined
  /** Downloads started. */
  readonly fetches: number
  /** Why the last download failed, when it did. */
  readonly lastError: string | undefined
}

/**
 * The cache for one jwksUri. Keys are looked up by kid; a miss triggers at most one refresh per
 * cooldown (concurrent misses share it), and a kid still missing after a refresh is remembered for
 * negativeCacheTtlMs so repeating it costs nothing.
 */
export class RemoteJwks implements KeySource {
  private keys: KeySet | undefined
  private loadedAt: number | undefined
  private lastAttemptAt: number | undefined
  private lastError: string | undefined
  private inflight: Promise<void> | undefined
  private fetches = 0
  /** Unknown kid → when to forget it; Map order is insertion order, so the oldest goes first. */
  private readonly unknown = new Map<string, number>()

  constructor(
    readonly uri: string,
    private readonly settings: Settings,
    private readonly agent: Agent,
    private readonly closing: AbortSignal,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  get description(): string {
    return this.uri
  }

  status(): JwksStatus {
    return { uri: this.uri, keys: this.keys?.size ?? 0, loadedAt: this.loadedAt, fetches: this.fetches, lastError: this.lastError }
  }

  /** Starts the first download in the background when nothing is loaded (a new config's warm-up). */
  warm(): void {
    if (this.keys === undefined) void this.refresh('first use')
  }

  async resolve(kid: string | undefined, alg: string): Promise<KeyLookup> {
    if (this.keys === undefined) {
      await (this.inflight ?? this.refresh('first use'))
      if (this.keys === undefined) return this.noKeys()
      return this.lookupAfterRefresh(kid, alg)
    }
    const now = this.now()
    // Stale-while-revalidate: an old set keeps serving while the refresh runs.
    if (now - this.loadedAt! >= this.settings.maxAgeMs) void this.refresh('max age')
    const found = this.keys.candidates(kid, alg)
    if (found === 'ambiguous') return this.ambiguous(alg)
    if (found.length > 0) return { kind: 'keys', keys: found }
    const memo = memoKey(kid, alg)
    const forgetAt = this.unknown.get(memo)
    if (forgetAt !== undefined && forgetAt > now) return this.unknownKey(kid, alg, 'not in the set at its last refresh')
    const pending = this.inflight ?? this.refresh(`unknown kid ${kid === undefined ? '(none)' : shown(kid)}`)
    if (pending === undefined) {
      const wait = Math.max(0, this.lastAttemptAt! + this.settings.cooldownMs - now)
      return this.unknownKey(kid, alg, `refreshed ${Math.round((now - this.lastAttemptAt!) / 1000)}s ago; next refresh allowed in ${Math.ceil(wait / 1000)}s`)
    }
    await pending
    return this.lookupAfterRefresh(kid, alg)
  }

  private lookupAfterRefresh(kid: string | undefined, alg: string): KeyLookup {
    const found = this.keys!.candidates(kid, alg)
    if (found === 'ambiguous') return this.ambiguous(alg)
    if (found.length > 0) return { kind: 'keys', keys: found }
    // Remember the kid only when a fresh set said no; after a failed refresh it may still come.
    if (this.lastError !== undefined) return this.unknownKey(kid, alg, 'the key set could not be refreshed')
    this.remember(memoKey(kid, alg))
    return this.unknownKey(kid, alg, 'not in the set just fetched')
  }

  private remember(memo: string): void {
    this.unknown.delete(memo)
    this.unknown.set(memo, this.now() + this.settings.negativeCacheTtlMs)
    while (this.unknown.size > this.settings.negativeCacheSize) this.unknown.delete(this.unknown.keys().next().value!)
  }

  /** Starts a download unless one is running or the cooldown forbids it; never rejects. */
  private refresh(why: string): Promise<void> | undefined {
    if (this.inflight) return this.inflight
    const now = this.now()
    if (this.lastAttemptAt !== undefined && now - this.lastAttemptAt < this.settings.cooldownMs) return undefined
    if (this.closing.aborted) return undefined
    this.lastAttemptAt = now
    this.fetches++
    // The periodic refresh is routine; one triggered by an unknown kid is worth a line (≤ 1 per cooldown).
    if (this.keys !== undefined && why !== 'max age') this.logger.info('refreshing JWT key set', { uri: this.uri, why })
    this.inflight = this.load().finally(() => {
      this.inflight = undefined
    })
    return this.inflight
  }

  private async load(): Promise<void> {
    let problem: string
    try {
      const doc = await fetchJwks(this.uri, { dispatcher: this.agent, timeoutMs: this.settings.timeoutMs, maxBytes: this.settings.maxBytes, signal: this.closing })
      const got = KeySet.parse(doc, this.settings.maxKeys)
      if (got.skipped.length > 0) this.logger.warn('JWT key set: keys left out', { uri: this.uri, skipped: got.skipped.slice(0, 10) })
      if (got.set) {
        const recovered = this.lastError !== undefined
        this.keys = got.set
        this.loadedAt = this.now()
        this.lastError = undefined
        if (recovered) this.logger.info('JWT key set loaded again', { uri: this.uri, keys: got.set.size })
        return
      }
      problem = got.problem!
    } catch (err) {
      problem = (err as Error).message
    }
    this.lastError = problem
    this.logger.warn(this.keys ? 'JWT key set refresh failed; keeping the keys loaded before' : 'JWT key set could not be loaded; tokens of this issuer are refused until it loads', {
      uri: this.uri, error: problem, retryInMs: this.settings.cooldownMs,
    })
  }

  private noKeys(): KeyLookup {
    return {
      kind: 'miss', check: 'no_keys',
      reason: 'no keys have been loaded for this issuer (its key set could not be fetched), so every token is refused until they load',
      detail: `${this.uri}: ${this.lastError ?? 'not fetched yet'}`,
    }
  }

  private unknownKey(kid: string | undefined, alg: string, why: string): KeyLookup {
    const what = kid === undefined ? `no ${alg} key` : `no ${alg} key with kid ${shown(kid)}`
    return { kind: 'miss', check: 'unknown_key', reason: `${what} in the issuer's key set (${why})`, detail: this.uri }
  }

  private ambiguous(alg: string): KeyLookup {
    return { kind: 'miss', check: 'unknown_key', reason: `the token has no kid and more than one ${alg} key of the issuer's key set fits; the issuer must name its key (kid)` }
  }
}

function memoKey(kid: string | undefined, alg: string): string {
  return kid === undefined ? `\u0000${alg}` : `${kid}\u0000${alg}`
}

/**
 * The JWKS caches of one mesh, one per jwksUri, shared by every config version: compile each
 * version's RequestAuthentication with the same registry and keys stay warm across config pushes.
 * Downloads use the registry's own undici Agent, never the mesh's dispatcher, and only ever the
 * configured URI.
 *
 * @example
 * const jwks = new JwksRegistry({ logger })
 * const authn = compileRequestAuth(policy.requestAuthentication, { service, namespace, jwks })
 * // on the next config version: compile again with the same `jwks`, then jwks.retain(uris in use)
 */
export class JwksRegistry {
  private readonly caches = new Map<string, RemoteJwks>()
  private readonly settings: Settings
  private readonly agent: Agent
  private readonly closer = new AbortController()
  private readonly logger: Logger
  private readonly now: () => number

  constructor(options: JwksCacheOptions = {}) {
    const settings = { ...DEFAULTS }
    for (const key of Object.keys(DEFAULTS) as (keyof Settings)[]) {
      const v = options[key]
      if (v === undefined) continue
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) invalidArg(`jwks.${key}`, `must be a number ≥ 0 (got ${String(v)})`)
      settings[key] = v
    }
    if (settings.timeoutMs < 1) invalidArg('jwks.timeoutMs', 'must be at least 1')
    if (settings.maxKeys < 1) invalidArg('jwks.maxKeys', 'must be at least 1')
    this.settings = settings
    this.logger = options.logger ?? silentLogger
    this.now = options.now ?? Date.now
    this.agent = new Agent({ connect: { timeout: settings.timeoutMs }, keepAliveTimeout: 10_000, connections: 2 })
  }

  /** The cache for `uri` (made on first use, then kept). */
  remote(uri: string): RemoteJwks {
    let cache = this.caches.get(uri)
    if (!cache) {
      cache = new RemoteJwks(uri, this.settings, this.agent, this.closer.signal, this.logger, this.now)
      this.caches.set(uri, cache)
    }
    return cache
  }

  /** Drops the caches of URIs no config version uses any more. */
  retain(uris: Iterable<string>): void {
    const keep = new Set(uris)
    for (const uri of this.caches.keys()) if (!keep.has(uri)) this.caches.delete(uri)
  }

  status(): JwksStatus[] {
    return [...this.caches.values()].map((c) => c.status())
  }

  /** Aborts downloads in flight and closes the connections. Lookups then use what is loaded. */
  async close(): Promise<void> {
    this.closer.abort()
    await this.agent.close().catch(() => undefined)
  }
}
