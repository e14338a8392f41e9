// End-user JWT verification for one service (RequestAuthentication, Istio semantics): find the
// token, pick the rule by its iss, check what jose must never see, verify with pinned algorithms,
// and remember tokens that verified.
import type { IncomingHttpHeaders } from 'node:http'
import type * as Jose from 'jose'
import type { CryptoKey, JWK, JWTPayload } from 'jose'
import { MAX_KID_LENGTH, normalizeTokenType } from '../../config/validate-authn.js'
import type { RequestAuthSettings } from '../../config/types.js'
import { WeftError, invalidArg } from '../../errors/index.js'
import { silentLogger, type Logger } from '../../util/logger.js'
import type { JwksRegistry } from './jwks-cache.js'
import { StaticJwks, type KeySource } from './key-source.js'
import { human, invalid, iso, rejection, type AuthnCheck, type AuthnInvalid } from './rejection.js'
import { shown } from './shown.js'
import { VerifiedTokenCache } from './token-cache.js'
import { TokenLocations } from './token-locations.js'
import { MAX_TOKEN_LENGTH, parseCompact } from './token-parse.js'

export type { AuthnCheck, AuthnInvalid }

export interface AuthnOk {
  readonly kind: 'ok'
  /** "iss/sub": what AuthorizationPolicy `requestPrincipals` match. */
  readonly principal: string
  readonly issuer: string
  readonly subject: string
  readonly audiences: string[]
  /** The verified claims (frozen: one object may serve many requests from the token cache). */
  readonly claims: Record<string, unknown>
}

/**
 * `none`: no token at any configured location (authentication configured is not authentication
 * required: authorization decides, RELIABILITY J11). `ok`: a verified token. `invalid`: a token
 * was sent and failed; the caller answers 401.
 */
export type AuthnResult = { readonly kind: 'none' } | AuthnOk | AuthnInvalid

export interface AuthnInput {
  headers: IncomingHttpHeaders
  /** The raw query string, with or without its leading "?" ('' when none). */
  query: string
}

export interface CompileAuthnOptions {
  service: string
  namespace: string
  /** The mesh's JWKS caches; pass the same registry to every config version. */
  jwks: JwksRegistry
  logger?: Logger
  /** Verified tokens remembered. Default 10_000; 0 turns the cache off. */
  tokenCacheSize?: number
  /** Longest a verified token is trusted without verifying it again (never past its exp). Default 60 s. */
  tokenCacheMaxAgeMs?: number
  /** Clock (ms since the epoch), for tests. Default Date.now. */
  now?: () => number
}

interface Rule {
  readonly label: string
  readonly issuer: string
  readonly algorithms: ReadonlySet<string>
  readonly algorithmList: string[]
  readonly audiences: string[]
  /** Normalized `typ` values a token must carry (RELIABILITY J6); undefined: typ is not checked. */
  readonly tokenTypes: ReadonlySet<string> | undefined
  /** The configured tokenTypes as written, for messages. */
  readonly tokenTypeList: string[]
  readonly toleranceMs: number
  readonly keys: KeySource
}

/** What an authenticator has done: jose verifications made and token-cache hits. */
export interface AuthnStats {
  readonly verifications: number
  readonly cacheHits: number
  readonly cachedTokens: number
}

const NONE: AuthnResult = Object.freeze({ kind: 'none' })

// jose is loaded with the first token to verify: most meshes have no RequestAuthentication, and
// loading it up front cost every process ~1.5 MB of RSS (with yaml's, ~2.5 MB; measured with all
// of Weft's dependencies loaded). jose is ESM-only, so it comes by a dynamic import; once here,
// verifies use it without another await.
let joseLib: typeof Jose | undefined
let joseLoading: Promise<typeof Jose> | undefined
function loadJose(): Promise<typeof Jose> {
  return (joseLoading ??= import('jose').then((lib) => (joseLib = lib)))
}

/**
 * Keys imported once per (key object, algorithm): given a JWK, jose normalises and looks it up
 * again on every verify (measured ~5–8 µs of a ~110 µs ES256 verify). Key objects live as long as
 * their key set, so a WeakMap frees them with it.
 */
const imported = new WeakMap<object, Map<string, Promise<CryptoKey | Uint8Array>>>()
function cryptoKey(jwk: object, alg: string): Promise<CryptoKey | Uint8Array> {
  let byAlg = imported.get(jwk)
  if (!byAlg) imported.set(jwk, (byAlg = new Map()))
  let k = byAlg.get(alg)
  if (!k) {
    k = joseLib ? joseLib.importJWK(jwk as JWK, alg) : loadJose().then((lib) => lib.importJWK(jwk as JWK, alg))
    // A key that fails to import is not kept: the verify reports it, and the next try imports again.
    k.catch(() => byAlg!.delete(alg))
    byAlg.set(alg, k)
  }
  return k
}
/** Header parameters that name or carry a key: never fetched, never used, refused (J8, S3). */
const KEY_HEADERS = ['jku', 'x5u', 'jwk', 'x5c'] as const
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
const NO_KEYS_LOG_EVERY_MS = 60_000

/**
 * Compiles the RequestAuthentications that select `service` in `namespace` (those naming it, and
 * those with no service in its namespace; their rules in config order) into an authenticator.
 * Returns undefined when none does: the caller then skips the JWT layer at zero cost.
 *
 * @example
 * const authn = compileRequestAuth(policy.requestAuthentication, { service: 'payments', namespace: 'default', jwks })
 * const r = authn ? await authn.authenticate({ headers: req.headers, query }) : { kind: 'none' }
 * if (r.kind === 'invalid') throw authnError(r) // 401 WEFT_ERR_UNAUTHENTICATED
 */
export function compileRequestAuth(settings: readonly RequestAuthSettings[], options: CompileAuthnOptions): JwtAuthenticator | undefined {
  const selected = settings
    .filter((s) => s.namespace === options.namespace && (s.service === undefined || s.service === options.service))
    .sort((a, b) => a.order - b.order)
  if (selected.length === 0) return undefined
  return new JwtAuthenticator(selected, options)
}

/** The 401 error for a rejected token (WEFT_ERR_UNAUTHENTICATED; details.check names the check). */
export function authnError(result: AuthnInvalid): WeftError {
  return new WeftError('WEFT_ERR_UNAUTHENTICATED', `JWT rejected: ${result.reason}`, { details: { check: result.check } })
}

export class JwtAuthenticator {
  private readonly rules: Rule[] = []
  private readonly locations: TokenLocations
  private readonly cache: VerifiedTokenCache<AuthnOk>
  private readonly now: () => number
  private readonly logger: Logger
  private readonly noKeysLoggedAt = new Map<string, number>()
  private verifications = 0
  private cacheHits = 0
  /** The remote key sets this authenticator reads (for JwksRegistry.retain). */
  readonly jwksUris: readonly string[]

  constructor(selected: readonly RequestAuthSettings[], options: CompileAuthnOptions) {
    const size = options.tokenCacheSize ?? 10_000
    const maxAge = options.tokenCacheMaxAgeMs ?? 60_000
    if (!Number.isInteger(size) || size < 0) invalidArg('tokenCacheSize', `must be a whole number ≥ 0 (got ${size})`)
    if (!Number.isFinite(maxAge) || maxAge < 0) invalidArg('tokenCacheMaxAgeMs', `must be ≥ 0 (got ${maxAge})`)
    this.now = options.now ?? Date.now
    this.logger = options.logger ?? silentLogger
    this.cache = new VerifiedTokenCache(size, maxAge)
    const uris = new Set<string>()
    const settings = selected.flatMap((ra) => ra.jwtRules.map((rule, i) => ({ rule, label: `RequestAuthentication/${ra.name} jwtRules[${i}]` })))
    for (const { rule, label } of settings) {
      let keys: KeySource
      if (rule.jwksUri !== undefined) {
        const remote = options.jwks.remote(rule.jwksUri)
        remote.warm()
        uris.add(rule.jwksUri)
        keys = remote
      } else {
        keys = new StaticJwks(rule.jwks?.keys ?? [])
      }
      this.rules.push({
        label,
        issuer: rule.issuer,
        algorithms: new Set(rule.algorithms),
        algorithmList: [...rule.algorithms],
        audiences: [...rule.audiences],
        tokenTypes: rule.tokenTypes ? new Set(rule.tokenTypes.map(normalizeTokenType)) : undefined,
        tokenTypeList: [...(rule.tokenTypes ?? [])],
        toleranceMs: rule.clockToleranceMs,
        keys,
      })
    }
    this.locations = new TokenLocations(settings.map((s) => s.rule))
    this.jwksUris = [...uris]
  }

  /** Verifies the request's token, if it carries one. Never throws; see AuthnResult. */
  async authenticate(input: AuthnInput): Promise<AuthnResult> {
    const found = this.locations.find(input.headers, input.query)
    if (found.length === 0) return NONE
    if (found.length > 1) return invalid('multiple_tokens', `the request carries more than one token (${found.flatMap((f) => f.where).join(', ')}); send exactly one`)
    const { token, rules, where } = found[0]!
    if (token.length > MAX_TOKEN_LENGTH) return invalid('too_large', `the token is ${token.length} characters, over the ${MAX_TOKEN_LENGTH} limit`)
    const now = this.now()
    const hit = this.cache.get(token, now)
    if (hit !== undefined && rules.includes(hit.rule)) {
      this.cacheHits++
      return hit.value
    }
    return this.verify(token, rules, where, now)
  }

  stats(): AuthnStats {
    return { verifications: this.verifications, cacheHits: this.cacheHits, cachedTokens: this.cache.size }
  }

  /** One line per rule, for `weft explain`. */
  describe(): string[] {
    return this.rules.map((r) => `${r.label}: issuer ${r.issuer}, keys ${r.keys.description}, audiences [${r.audiences.join(', ')}], algorithms [${r.algorithmList.join(', ')}]${r.tokenTypes ? `, token types [${r.tokenTypeList.join(', ')}]` : ''}, clock tolerance ${r.toleranceMs}ms`)
  }

  private async verify(token: string, ruleIndexes: readonly number[], where: readonly string[], now: number): Promise<AuthnResult> {
    const parsed = parseCompact(token)
    if (typeof parsed === 'string') return invalid('malformed', parsed)
    const { header, payload } = parsed
    const alg = header.alg
    if (typeof alg !== 'string' || alg.length === 0) return invalid('malformed', 'the token header has no "alg"')
    if (alg.toLowerCase() === 'none') return invalid('unsigned', 'alg "none": unsigned tokens are never accepted')
    for (const name of KEY_HEADERS) {
      if (header[name] !== undefined) {
        return invalid('key_header', `the token carries a "${name}" header; keys named or embedded by a token are never fetched or used (only the configured key set is), so it is refused`)
      }
    }
    const kid = header.kid
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH || CONTROL.test(kid))) {
      return invalid('kid', `kid ${shown(kid)} is not a key id (a string of 1 to ${MAX_KID_LENGTH} characters with no control characters)`)
    }
    const iss = payload.iss
    if (typeof iss !== 'string') return invalid('issuer', 'the token has no "iss" claim, so no rule can be chosen for it')
    const rules = ruleIndexes.filter((i) => this.rules[i]!.issuer === iss)
    if (rules.length === 0) {
      const elsewhere = this.rules.some((r) => r.issuer === iss)
      return invalid('issuer', elsewhere
        ? `issuer ${shown(iss)} is configured, but its tokens are not read from ${where.join(', ')}`
        : `issuer ${shown(iss)} is not configured for this service`)
    }
    let failure: AuthnInvalid | undefined
    for (const i of rules) {
      const result = await this.verifyWith(i, token, alg, header.typ, kid as string | undefined, payload, now)
      if (result.kind === 'ok') return result
      failure ??= result
    }
    return failure!
  }

  private async verifyWith(index: number, token: string, alg: string, typ: unknown, kid: string | undefined, unverified: Record<string, unknown>, now: number): Promise<AuthnOk | AuthnInvalid> {
    const rule = this.rules[index]!
    if (!rule.algorithms.has(alg)) {
      const hmac = /^HS/i.test(alg) ? '; shared-secret (HMAC) algorithms are never accepted' : ''
      return invalid('algorithm', `algorithm ${shown(alg)} is not allowed for issuer ${shown(rule.issuer)} (allowed: ${rule.algorithmList.join(', ')})${hmac}`)
    }
    // Explicit typing (J6): checked on the unverified header before any key lookup or signature
    // verify. A forged typ gains nothing: the signature covers the header, so jose refuses it next.
    // The verified-token cache needs no part in this: an entry counts only for the rule that
    // accepted it, and that rule checked this token's (signed, unchanging) typ.
    if (rule.tokenTypes !== undefined && (typeof typ !== 'string' || !rule.tokenTypes.has(normalizeTokenType(typ)))) {
      const want = rule.tokenTypeList.map((t) => shown(t)).join(', ')
      return invalid('type', typ === undefined
        ? `the token header has no "typ"; issuer ${shown(rule.issuer)} accepts only token types ${want} here (an ID token or another kind of token of the same issuer is not an access token)`
        : `token type (typ) ${shown(typ)} is not accepted for issuer ${shown(rule.issuer)} (accepted: ${want}); an ID token or another kind of token of the same issuer is not an access token`)
    }
    const lookup = await rule.keys.resolve(kid, alg)
    if (lookup.kind === 'miss') {
      if (lookup.check === 'no_keys') this.logNoKeys(rule, lookup.detail ?? lookup.reason, now)
      return invalid(lookup.check, `${lookup.reason} (issuer ${shown(rule.issuer)})`)
    }
    let failure: AuthnInvalid | undefined
    for (const key of lookup.keys) {
      this.verifications++
      try {
        // Every check is pinned by the rule, never by the token (J1, J3, J4, J5).
        const verifyKey = await cryptoKey(key, alg)
        const { payload } = await (joseLib ?? (await loadJose())).jwtVerify(token, verifyKey, {
          algorithms: rule.algorithmList,
          issuer: rule.issuer,
          audience: rule.audiences,
          clockTolerance: rule.toleranceMs / 1000,
          currentDate: new Date(now),
          requiredClaims: ['exp', 'sub'],
        })
        return this.accept(index, rule, token, payload, now)
      } catch (err) {
        failure = rejection(err, rule, key, unverified, now)
        // Another key with the same kid (or, without a kid, another fitting key) may still verify.
        if (failure.check !== 'signature') break
      }
    }
    return failure!
  }

  private accept(index: number, rule: Rule, token: string, payload: JWTPayload, now: number): AuthnOk | AuthnInvalid {
    const sub = payload.sub
    if (typeof sub !== 'string' || sub.length === 0) return invalid('claims', 'the "sub" claim must be a non-empty string')
    // jose checks iat only with maxTokenAge; a token issued in the future is refused here (S2).
    if (typeof payload.iat === 'number' && payload.iat * 1000 > now + rule.toleranceMs) {
      return invalid('not_yet_valid', `the token was issued in the future (iat ${iso(payload.iat * 1000)}, ${human(payload.iat * 1000 - now)} ahead of this host's clock, ${iso(now)}; clock tolerance ${human(rule.toleranceMs)}): the issuer's clock or this host's is off`, true)
    }
    const aud = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []).filter((a): a is string => typeof a === 'string')
    const ok: AuthnOk = Object.freeze({
      kind: 'ok' as const,
      principal: `${rule.issuer}/${sub}`,
      issuer: rule.issuer,
      subject: sub,
      audiences: Object.freeze(aud) as string[],
      claims: deepFreeze(payload) as Record<string, unknown>,
    })
    this.cache.set(token, ok, index, payload.exp!, now)
    return ok
  }

  private logNoKeys(rule: Rule, detail: string, now: number): void {
    const last = this.noKeysLoggedAt.get(rule.label)
    if (last !== undefined && now - last < NO_KEYS_LOG_EVERY_MS) return
    this.noKeysLoggedAt.set(rule.label, now)
    this.logger.warn('JWT refused: no keys loaded for its issuer', { rule: rule.label, issuer: rule.issuer, keys: detail })
  }
}

function deepFreeze(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
