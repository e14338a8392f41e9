// RequestAuthentication validation (ARCHITECTURE §4, RELIABILITY §3.1), and the one definition of
// which JWS algorithms and which JWKs Weft accepts, shared with src/identity/jwt (which verifies).
import { createPublicKey } from 'node:crypto'
import { formatDuration } from '../util/duration.js'
import type { Checker, Obj } from './checker.js'
import { DNS_NAME } from './names.js'
import type { JwtRuleSettings, PathSeg, RequestAuthSettings, ServiceSettings } from './types.js'

// ---------------------------------------------------------------------------------------------
// Algorithms and keys, shared with src/identity/jwt (identity depends on config, never the other way).

/**
 * The JWS algorithms a rule may allow: asymmetric signatures only, so a verifier holds nothing that
 * can mint a token (RELIABILITY J1, J12). EdDSA is Ed25519.
 */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number]

const EC_CURVE_OF: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }

/** Why `alg` may not be allowed by a rule, or undefined when it may. */
export function algorithmProblem(alg: string): string | undefined {
  if ((JWT_ALGORITHMS as readonly string[]).includes(alg)) return undefined
  if (alg.toLowerCase() === 'none') return '"none" is an unsigned token: anyone could write one, so it is never accepted'
  if (/^HS(256|384|512)$/i.test(alg)) {
    return `"${alg}" is a shared-secret (HMAC) algorithm: whoever can verify can also mint tokens, and a public key used as the secret is the classic forgery (CVE-2016-10555). Weft takes no shared secrets; use an asymmetric algorithm (${JWT_ALGORITHMS.join(', ')})`
  }
  const near = JWT_ALGORITHMS.find((a) => a.toLowerCase() === alg.toLowerCase())
  return near
    ? `algorithm names are case-sensitive; write "${near}"`
    : `"${alg}" is not a supported algorithm (one of ${JWT_ALGORITHMS.join(', ')})`
}

/** A public verification key as Weft keeps it: only the members a verifier needs (RFC 7517/7518). */
export interface PublicJwk {
  readonly kty: 'RSA' | 'EC' | 'OKP'
  readonly kid?: string
  readonly alg?: string
  readonly use?: string
  readonly key_ops?: readonly string[]
  readonly crv?: string
  readonly n?: string
  readonly e?: string
  readonly x?: string
  readonly y?: string
}

/** Longest `kid` accepted, in keys and in tokens (RELIABILITY J7: hostile input, capped). */
export const MAX_KID_LENGTH = 256
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']
const B64URL = /^[A-Za-z0-9_-]+$/
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
const MIN_RSA_BITS = 2048

/**
 * Reads one JWK of a verification key set. A string result is the problem, prefixed with the
 * member it concerns when there is one ("kty: …"). Members this version does not use (x5c, x5t, …)
 * are allowed and dropped: RFC 7517 §4 says to ignore them, and none of them is ever trusted.
 */
export function readPublicJwk(value: unknown): { jwk: PublicJwk } | { member?: string; problem: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: 'a key must be a JWK object' }
  const v = value as Obj
  if (typeof v.kty !== 'string') return { member: 'kty', problem: 'is required (RSA, EC or OKP)' }
  if (v.kty === 'oct') return { member: 'kty', problem: '"oct" is a shared secret: Weft verifies with public keys only (RS*, PS*, ES*, EdDSA)' }
  if (v.kty !== 'RSA' && v.kty !== 'EC' && v.kty !== 'OKP') return { member: 'kty', problem: `"${String(v.kty).slice(0, 32)}" is not a supported key type (RSA, EC or OKP)` }
  const secret = PRIVATE_MEMBERS.find((m) => v[m] !== undefined)
  if (secret) return { member: secret, problem: `the key holds private key material ("${secret}"): a verification key set carries public keys only` }
  const jwk: Record<string, unknown> = { kty: v.kty }
  if (v.kid !== undefined) {
    if (typeof v.kid !== 'string' || v.kid.length === 0 || v.kid.length > MAX_KID_LENGTH || CONTROL.test(v.kid)) {
      return { member: 'kid', problem: `must be a non-empty string of at most ${MAX_KID_LENGTH} characters with no control characters` }
    }
    jwk.kid = v.kid
  }
  if (v.use !== undefined) {
    if (v.use !== 'sig') return { member: 'use', problem: `is ${JSON.stringify(v.use).slice(0, 40)}: a key that verifies signatures has use "sig" (or none)` }
    jwk.use = v.use
  }
  if (v.key_ops !== undefined) {
    if (!Array.isArray(v.key_ops) || v.key_ops.some((op) => typeof op !== 'string')) return { member: 'key_ops', problem: 'must be a list of strings' }
    if (!v.key_ops.includes('verify')) return { member: 'key_ops', problem: 'does not include "verify", so the key can verify nothing' }
    jwk.key_ops = [...v.key_ops]
  }
  if (v.alg !== undefined) {
    const problem = typeof v.alg === 'string' ? algorithmProblem(v.alg) : 'must be a string'
    if (problem) return { member: 'alg', problem }
    jwk.alg = v.alg
  }
  const members = v.kty === 'RSA' ? ['n', 'e'] : v.kty === 'EC' ? ['crv', 'x', 'y'] : ['crv', 'x']
  for (const m of members) {
    if (typeof v[m] !== 'string' || (m !== 'crv' && !B64URL.test(v[m] as string))) return { member: m, problem: m === 'crv' ? 'is required' : 'is required (base64url)' }
    jwk[m] = v[m]
  }
  if (v.kty === 'EC' && !Object.values(EC_CURVE_OF).includes(v.crv as string)) return { member: 'crv', problem: `"${String(v.crv).slice(0, 32)}" is not supported (P-256, P-384 or P-521)` }
  if (v.kty === 'OKP' && v.crv !== 'Ed25519') return { member: 'crv', problem: `"${String(v.crv).slice(0, 32)}" is not supported (Ed25519)` }
  let bits: number | undefined
  try {
    // Parsing with node:crypto proves the numbers make a key (a point on the curve, a modulus).
    const key = createPublicKey({ key: jwk as never, format: 'jwk' })
    bits = key.asymmetricKeyDetails?.modulusLength
  } catch (err) {
    return { problem: `not a valid ${v.kty} public key (${(err as Error).message})` }
  }
  if (v.kty === 'RSA' && (bits === undefined || bits < MIN_RSA_BITS)) return { member: 'n', problem: `an RSA key of ${bits ?? '?'} bits is too weak; at least ${MIN_RSA_BITS} bits` }
  if (jwk.alg !== undefined && !keyTypeFits(jwk as unknown as PublicJwk, jwk.alg as string)) return { member: 'alg', problem: `"${jwk.alg}" cannot be used with a ${v.kty}${jwk.crv ? ` ${jwk.crv}` : ''} key` }
  return { jwk: Object.freeze(jwk) as unknown as PublicJwk }
}

function keyTypeFits(jwk: PublicJwk, alg: string): boolean {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return jwk.kty === 'RSA'
  if (alg.startsWith('ES')) return jwk.kty === 'EC' && jwk.crv === EC_CURVE_OF[alg]
  return alg === 'EdDSA' && jwk.kty === 'OKP' && jwk.crv === 'Ed25519'
}

/** Whether `jwk` can verify a signature made with `alg` (type, curve, and its alg when it has one). */
export function keyCanVerify(jwk: PublicJwk, alg: string): boolean {
  return (jwk.alg === undefined || jwk.alg === alg) && keyTypeFits(jwk, alg)
}

/**
 * A JWS `typ` as compared (RELIABILITY J6): media type names ignore case, and `application/` may be
 * left out (RFC 7515 §4.1.9), so `application/at+jwt`, `AT+JWT` and `at+jwt` are all `at+jwt`.
 * Another top-level type (`text/at+jwt`) keeps its prefix and so never matches a bare name.
 */
export function normalizeTokenType(typ: string): string {
  const lower = typ.toLowerCase()
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower
}

// ---------------------------------------------------------------------------------------------
// Validation of the resource.

const SPEC_FIELDS = ['service', 'jwtRules']
const RULE_FIELDS = ['issuer', 'jwksUri', 'jwks', 'audiences', 'algorithms', 'tokenTypes', 'fromHeaders', 'fromCookies', 'fromParams', 'clockTolerance']
/** HTTP token characters (RFC 9110 §5.6.2): header and cookie names. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** A media type without parameters (`at+jwt`, `application/at+jwt`): a `typ` value a rule may require. */
const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)?$/
const MAX_TOKEN_TYPE_LENGTH = 128
const DEFAULT_CLOCK_TOLERANCE_MS = 30_000
const MAX_CLOCK_TOLERANCE_MS = 5 * 60_000
const MAX_ISSUER_LENGTH = 1024
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

/**
 * Validates a RequestAuthentication spec into RequestAuthSettings, recording every problem with
 * its field path (and line:column for files). Returns undefined when the resource has any error:
 * a token rule is never half-understood (fail closed, RELIABILITY §3.3).
 *
 * Shape (ARCHITECTURE §4): `{ service?, jwtRules: [{ issuer, jwksUri | jwks, audiences,
 * algorithms, tokenTypes?, fromHeaders?, fromCookies?, fromParams?, clockTolerance? }] }`.
 * `tokenTypes` (for example `[at+jwt]`, RFC 9068): when given, a token's `typ` header must be one
 * of them (RELIABILITY J6); absent, `typ` is not checked. Defaults: when no
 * location is given, `fromHeaders: [{ name: authorization, prefix: "Bearer " }]` (no query
 * parameter by default: tokens in URLs end up in access logs); `clockTolerance: 30s` (at most 5m).
 * `jwks` is `{ keys: [...] }`, or Istio's form, the same as a JSON string; inline keys are parsed
 * here, so a bad key is a config error.
 */
export function validateRequestAuthentication(c: Checker, name: string, namespace: string, specIn: unknown, order: number,
  services: Map<string, ServiceSettings>): RequestAuthSettings | undefined {
  const firstIssue = c.issues.length
  const p: PathSeg[] = ['spec']
  if (specIn === undefined || specIn === null) return void c.error(p, 'is required (want { service?, jwtRules: [...] })', 'WEFT_E_FIELD_REQUIRED')
  const spec = c.object(specIn, p, SPEC_FIELDS)
  if (!spec) return undefined
  const service = c.string(spec.service, [...p, 'service'], { pattern: DNS_NAME })
  if (service !== undefined && !services.has(service)) {
    // Registry-only services have no Service resource; a RequestAuthentication may still select one.
    c.warn([...p, 'service'], `no Service "${service}" in this config (fine if it registers with the daemon)`, 'WEFT_W_SERVICE_UNKNOWN')
  }
  const rulesIn = c.array(spec.jwtRules, [...p, 'jwtRules'])
  if (!rulesIn || rulesIn.length === 0) {
    if (spec.jwtRules === undefined || Array.isArray(spec.jwtRules)) c.error([...p, 'jwtRules'], 'needs at least one rule ({ issuer, jwksUri or jwks, audiences, algorithms })', 'WEFT_E_FIELD_REQUIRED')
    return undefined
  }
  const jwtRules: JwtRuleSettings[] = []
  const issuers = new Map<string, number>()
  rulesIn.forEach((ruleIn, i) => {
    const rule = readRule(c, ruleIn, [...p, 'jwtRules', i])
    if (!rule) return
    const earlier = issuers.get(rule.issuer)
    if (earlier !== undefined) {
      c.warn([...p, 'jwtRules', i, 'issuer'], `rule ${earlier} has the same issuer; a token of this issuer is tried against each in order and the first that verifies wins`, 'WEFT_W_AUTHN_DUPLICATE_ISSUER')
    } else issuers.set(rule.issuer, i)
    jwtRules.push(rule)
  })
  if (c.issues.slice(firstIssue).some((issue) => issue.severity === 'error')) return undefined
  return { name, namespace, ...(service !== undefined ? { service } : {}), jwtRules, order }
}

function readRule(c: Checker, value: unknown, p: PathSeg[]): JwtRuleSettings | undefined {
  const r = c.object(value, p, RULE_FIELDS)
  if (!r) return value === undefined || value === null ? void c.error(p, 'must be an object') : undefined
  const issuer = c.string(r.issuer, [...p, 'issuer'], { required: true })
  if (issuer !== undefined && (issuer.length > MAX_ISSUER_LENGTH || CONTROL.test(issuer))) {
    c.error([...p, 'issuer'], `must be at most ${MAX_ISSUER_LENGTH} characters with no control characters`)
  }
  const source = readKeySource(c, r, p)
  const audiences = readStrings(c, r.audiences, [...p, 'audiences'], 'an audience')
  if (r.audiences === undefined) c.error([...p, 'audiences'], 'is required: a token is accepted only when its aud names one of these (RELIABILITY J4), so a token minted for another service is not accepted here', 'WEFT_E_FIELD_REQUIRED')
  const algorithms = readAlgorithms(c, r.algorithms, [...p, 'algorithms'])
  if (source?.jwks && algorithms) {
    // With inline keys we can tell now whether any key can verify any allowed algorithm.
    const usable = source.jwks.keys.some((k) => algorithms.some((alg) => keyCanVerify(k as unknown as PublicJwk, alg)))
    if (!usable) c.error([...p, 'jwks'], `no key in this set can verify ${algorithms.join(' or ')} (check each key's kty, crv and alg)`)
  }
  const tokenTypes = readTokenTypes(c, r.tokenTypes, [...p, 'tokenTypes'])
  const locations = readLocations(c, r, p)
  const tolerance = c.duration(r.clockTolerance, [...p, 'clockTolerance'], { min: 0 })
  if (tolerance !== undefined && tolerance > MAX_CLOCK_TOLERANCE_MS) {
    c.error([...p, 'clockTolerance'], `must be at most ${formatDuration(MAX_CLOCK_TOLERANCE_MS)} (got ${formatDuration(tolerance)}): a wider window lets expired tokens through; fix the clocks instead`)
  }
  if (issuer === undefined || !source || !audiences || !algorithms || !locations || tokenTypes === null) return undefined
  return {
    issuer,
    ...source,
    audiences,
    algorithms,
    ...(tokenTypes !== undefined ? { tokenTypes } : {}),
    ...locations,
    clockToleranceMs: tolerance ?? DEFAULT_CLOCK_TOLERANCE_MS,
  }
}

function readKeySource(c: Checker, r: Obj, p: PathSeg[]): Pick<JwtRuleSettings, 'jwksUri' | 'jwks'> | undefined {
  if (r.jwksUri !== undefined && r.jwks !== undefined) return void c.error([...p, 'jwks'], 'give either jwksUri or jwks, not both')
  if (r.jwksUri === undefined && r.jwks === undefined) return void c.error(p, 'needs jwksUri (a URL of the issuer\'s key set) or jwks (the keys inline)', 'WEFT_E_FIELD_REQUIRED')
  if (r.jwksUri !== undefined) {
    const up = [...p, 'jwksUri']
    const text = c.string(r.jwksUri, up)
    if (text === undefined) return undefined
    let url: URL
    try {
      url = new URL(text)
    } catch {
      return void c.error(up, `"${text}" is not a URL`)
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return void c.error(up, `must be an http or https URL (got ${url.protocol})`)
    if (url.username || url.password) return void c.error(up, 'must not carry credentials: URLs end up in logs')
    if (url.hash) return void c.error(up, 'must not have a #fragment')
    if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
      c.warn(up, 'plain http: anyone on the network path can replace the keys and mint tokens; use https', 'WEFT_W_JWKS_INSECURE')
    }
    return { jwksUri: url.href }
  }
  const jp = [...p, 'jwks']
  let set: unknown = r.jwks
  if (typeof set === 'string') {
    // Istio writes jwks as a JSON string.
    try {
      set = JSON.parse(set)
    } catch (err) {
      return void c.error(jp, `is a string but not JSON (${(err as Error).message})`)
    }
  }
  // A JWK set is the issuer's document, not our schema: members other than keys are ignored (RFC 7517 §5).
  if (typeof set !== 'object' || set === null || Array.isArray(set)) return void c.error(jp, 'must be a JWK set { keys: [...] } (or the same as a JSON string)')
  const obj = set as Obj
  const keysIn = c.array(obj.keys, [...jp, 'keys'])
  if (!keysIn || keysIn.length === 0) return void c.error([...jp, 'keys'], 'needs at least one key', 'WEFT_E_FIELD_REQUIRED')
  const keys: Record<string, unknown>[] = []
  const kids = new Set<string>()
  keysIn.forEach((k, i) => {
    const got = readPublicJwk(k)
    if ('problem' in got) return c.error(got.member ? [...jp, 'keys', i, got.member] : [...jp, 'keys', i], got.problem)
    if (got.jwk.kid !== undefined) {
      if (kids.has(got.jwk.kid)) return c.error([...jp, 'keys', i, 'kid'], `kid "${got.jwk.kid}" is used by an earlier key; kids must be unique in a set`)
      kids.add(got.jwk.kid)
    }
    keys.push({ ...got.jwk })
  })
  return { jwks: { keys } }
}

function readAlgorithms(c: Checker, value: unknown, p: PathSeg[]): string[] | undefined {
  if (value === undefined) {
    return void c.error(p, `is required: pin the algorithms this issuer signs with (for example [ES256] or [RS256]); the token's own alg header is never trusted (RELIABILITY J1)`, 'WEFT_E_FIELD_REQUIRED')
  }
  const list = readStrings(c, value, p, 'an algorithm')
  if (!list) return undefined
  let ok = true
  list.forEach((alg, i) => {
    const problem = algorithmProblem(alg)
    if (problem) {
      ok = false
      c.error([...p, i], problem, 'WEFT_E_AUTHN_ALGORITHM')
    }
  })
  return ok ? [...new Set(list)] : undefined
}

/**
 * `tokenTypes`: the `typ` values a token of this rule must carry (explicit typing, RFC 8725 §3.11),
 * so an ID token or a JWT-SVID (`typ: JWT`) of the same issuer is not taken for an access token.
 * undefined: the field is absent; null: it is invalid (the errors are recorded).
 */
function readTokenTypes(c: Checker, value: unknown, p: PathSeg[]): string[] | undefined | null {
  if (value === undefined) return undefined
  if (Array.isArray(value) && value.length === 0) {
    c.error(p, 'is an empty list, which no token could match: list the typ values this issuer\'s tokens carry (for example [at+jwt]) or remove the field to leave typ unchecked')
    return null
  }
  const list = readStrings(c, value, p, 'a token type')
  if (!list) return null
  let ok = true
  list.forEach((typ, i) => {
    if (typ.length > MAX_TOKEN_TYPE_LENGTH || !MEDIA_TYPE.test(typ)) {
      ok = false
      c.error([...p, i], `${JSON.stringify(typ.slice(0, 40))} is not a token type: want a media type of printable characters with no spaces or parameters, at most ${MAX_TOKEN_TYPE_LENGTH} characters (for example at+jwt or application/at+jwt)`)
    }
  })
  if (!ok) return null
  const byType = new Map<string, string>()
  for (const typ of list) if (!byType.has(normalizeTokenType(typ))) byType.set(normalizeTokenType(typ), typ)
  return [...byType.values()]
}

function readLocations(c: Checker, r: Obj, p: PathSeg[]): Pick<JwtRuleSettings, 'fromHeaders' | 'fromCookies' | 'fromParams'> | undefined {
  const firstIssue = c.issues.length
  const fromHeaders: JwtRuleSettings['fromHeaders'] = []
  ;(c.array(r.fromHeaders, [...p, 'fromHeaders']) ?? []).forEach((h, i) => {
    const hp = [...p, 'fromHeaders', i]
    const obj = c.object(h, hp, ['name', 'prefix'])
    if (!obj) return h === undefined || h === null ? c.error(hp, 'must be an object { name, prefix? }') : undefined
    const name = c.string(obj.name, [...hp, 'name'], { required: true, pattern: TOKEN })?.toLowerCase()
    const prefix = obj.prefix === '' ? '' : c.string(obj.prefix, [...hp, 'prefix']) ?? ''
    if (name === 'cookie') return c.error([...hp, 'name'], 'read a token from a cookie with fromCookies: [<cookie name>]')
    if (name === 'authorization' && prefix === '') {
      c.warn([...hp, 'prefix'], 'the Authorization header carries "Bearer <token>"; without prefix: "Bearer " no token will verify', 'WEFT_W_AUTHN_NO_PREFIX')
    }
    if (name !== undefined) fromHeaders.push({ name, prefix })
  })
  const fromCookies = readStrings(c, r.fromCookies, [...p, 'fromCookies'], 'a cookie name', TOKEN) ?? []
  const fromParams = readStrings(c, r.fromParams, [...p, 'fromParams'], 'a query parameter name') ?? []
  if (c.issues.slice(firstIssue).some((i) => i.severity === 'error')) return undefined
  // Istio's rule: the default location applies only when the rule names no location at all.
  if (r.fromHeaders === undefined && r.fromCookies === undefined && r.fromParams === undefined) {
    fromHeaders.push({ name: 'authorization', prefix: 'Bearer ' })
  }
  return { fromHeaders, fromCookies, fromParams }
}

/** A non-empty list of non-empty strings with no control characters. */
function readStrings(c: Checker, value: unknown, p: PathSeg[], what: string, pattern?: RegExp): string[] | undefined {
  const list = c.array(value, p)
  if (!list) return undefined
  if (list.length === 0) return void c.error(p, `is an empty list: list at least one ${what.replace(/^an? /, '')}${p.at(-1) === 'audiences' || p.at(-1) === 'algorithms' ? '' : ' or remove the field'}`)
  const out: string[] = []
  let ok = true
  list.forEach((v, i) => {
    const text = c.string(v, [...p, i], pattern ? { pattern } : {})
    if (text === undefined) return void (ok = false)
    if (CONTROL.test(text)) {
      ok = false
      return c.error([...p, i], `${what} must not hold control characters`)
    }
    out.push(text)
  })
  return ok ? out : undefined
}
