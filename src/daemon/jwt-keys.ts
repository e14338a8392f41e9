// The daemon's JWT-SVID key set as persisted (<dataDir>/ca/jwt-key.json, 0600, or the shared
// store's `jwt-key` document), and when each of its keys signs.
//
// Rotation is prepared → active, as SPIRE does it: a rotate publishes a new key in the JWKS at once
// but the key it replaces keeps signing until the activation time, rotatedAt + ACTIVATE_DELAY_MS;
// from then on the new key signs. The delay is longer than the least time between two fetches of a
// verifier's JWKS cache, so a verifier that fetched the set just before the rotate may fetch it
// again (and find the new kid) by the time the first token of the new key reaches it. Every daemon
// on a shared store computes the activation from the stored rotatedAt, so they switch together.
//
// With no rotation under way the set is stored as the bare private JWK, exactly the format of
// before rotation existed, so such a file or document is read by older daemons too (a downgrade,
// or daemons of two versions on one etcd). Mid-rotation it is
// `{ current: <private JWK of the new key>, previous: <private JWK of the old key>, rotatedAt: <ISO time> }`:
// the old key signs until the activation, so its private part is kept until `retire`. A `previous`
// that is a public JWK (as the first cut of rotation wrote it) is read too: the new key then signs
// at once, the old one having no private part left.
import type { JWK } from 'jose'
import { JwtSvidIssuer, MAX_JWT_SVID_TTL_MS, jwtSvidPublicKey, type Jwks } from '../identity/jwt/jwt-svid.js'

/**
 * The least time between two fetches of one JWKS by a verifier's cache (an unknown kid fetches it
 * again at most this often): the default `cooldownMs` of RemoteJwks (src/identity/jwt/jwks-cache.ts,
 * which does not export it). test/daemon/jwt-rotation.test.ts checks that cache against this value.
 */
export const JWKS_REFETCH_COOLDOWN_MS = 30_000
/** Slack on top of the cooldown: clock skew between daemons and verifiers, a slow fetch. */
export const ACTIVATE_MARGIN_MS = 15_000
/** From a rotate until its new key signs (the old key signs until then): 45 s. */
export const ACTIVATE_DELAY_MS = JWKS_REFETCH_COOLDOWN_MS + ACTIVATE_MARGIN_MS
/**
 * How long after the old key's last token (signed just before the activation) such a token may
 * still be accepted: the longest JWT-SVID lifetime plus the default clock tolerance of a
 * RequestAuthentication rule (30 s). Retire needs no force from activation + this; before (force),
 * tokens of the old key fail.
 */
export const OLD_TOKENS_VALID_MS = MAX_JWT_SVID_TTL_MS + 30_000

/** The key a rotation replaced: published until retired, signing until the activation. */
export interface PreviousKey {
  /** Its public JWK (kid, alg, use), as the JWKS publishes it. */
  jwk: JWK
  /** Its signer; absent only in a set the first cut of rotation wrote (public only: it signs no more). */
  signer?: JwtSvidIssuer
}

export interface JwtKeySet {
  /** The newest key: the only one with no rotation under way; during one, signs from the activation. Stays at retire. */
  current: JwtSvidIssuer
  /** The key replaced by the last rotate, until retired. */
  previous?: PreviousKey
  /** When the last rotate happened (ms since the epoch); set exactly when `previous` is. */
  rotatedAt?: number
}

/** When the set's newest key signs from (ms since the epoch); undefined with no rotation under way. */
export function activatesAt(s: JwtKeySet, activateDelayMs: number): number | undefined {
  if (!s.previous) return undefined
  return s.previous.signer ? s.rotatedAt! + activateDelayMs : s.rotatedAt!
}

/** What GET/POST /v1/jwt/… answer: the set as an operator reads it, at one moment. */
export interface JwtKeysView {
  /** The `iss` of the tokens. */
  issuer: string
  /** kid of the newest key: the one a rotate made, which stays at retire. */
  kid: string
  /** kid of the key that signs new tokens now (the previous one until the activation). */
  signingKid: string
  /** kid of the key a rotation replaced, while it is still published. */
  previousKid?: string
  /** ISO time of the rotate, while a rotation is under way. */
  rotatedAt?: string
  /** ISO time from which the newest key signs (rotatedAt + 45 s), while a rotation is under way. */
  activatesAt?: string
  /** ISO time from which `retire` needs no force (tokens of the old key have all expired). */
  retireAfter?: string
  /** The public set GET /v1/jwks serves. */
  jwks: Jwks
}

export async function newJwtKeySet(trustDomain: string): Promise<JwtKeySet> {
  return { current: await JwtSvidIssuer.create({ trustDomain }) }
}

/** The text to persist. */
export function jwtKeySetText(s: JwtKeySet): string {
  if (!s.previous) return JSON.stringify(s.current.toJwk())
  const previous = s.previous.signer ? s.previous.signer.toJwk() : s.previous.jwk
  return JSON.stringify({ current: s.current.toJwk(), previous, rotatedAt: new Date(s.rotatedAt!).toISOString() })
}

/**
 * The set in a persisted text (any format above); an error naming `where` when it is not one.
 * Every key is checked (a private one signs a probe) and every kid recomputed from its key.
 */
export async function readJwtKeySet(text: string, trustDomain: string, where: string): Promise<JwtKeySet> {
  try {
    const v = JSON.parse(text) as Record<string, unknown>
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object')
    // A bare JWK: one key, no rotation under way (the format of before rotation, still written then).
    if ('kty' in v) return { current: await JwtSvidIssuer.fromJwk(v as JWK, { trustDomain }) }
    for (const k of Object.keys(v)) if (k !== 'current' && k !== 'previous' && k !== 'rotatedAt') throw new Error(`unknown field "${k}" (want a private JWK, or { current, previous, rotatedAt })`)
    const current = await JwtSvidIssuer.fromJwk(v.current as JWK, { trustDomain })
    if (v.previous === undefined) return { current }
    const p = v.previous as JWK
    const previous: PreviousKey = typeof p === 'object' && p !== null && 'd' in p
      ? await JwtSvidIssuer.fromJwk(p, { trustDomain }).then((signer) => ({ jwk: signer.publicKey(), signer }))
      : { jwk: await jwtSvidPublicKey(p) }
    if (previous.jwk.kid === current.kid) throw new Error('its previous key is its current key')
    const rotatedAt = typeof v.rotatedAt === 'string' ? Date.parse(v.rotatedAt) : NaN
    if (!Number.isFinite(rotatedAt)) throw new Error('rotatedAt must be an ISO time when a previous key is kept')
    return { current, previous, rotatedAt }
  } catch (err) {
    throw new Error(`${where} is not a readable JWT-SVID key set (${(err as Error).message})`, { cause: err })
  }
}

/** The public set: the newest key first, then the one a rotation replaced (order kept across the activation). */
export function jwksOf(s: JwtKeySet): Jwks {
  return { keys: [s.current.publicKey(), ...(s.previous ? [{ ...s.previous.jwk }] : [])] }
}

/** The set as seen at `now`. */
export function viewOf(s: JwtKeySet, activateDelayMs: number, now: number): JwtKeysView {
  const from = activatesAt(s, activateDelayMs)
  const signing = s.previous?.signer && from !== undefined && now < from ? s.previous.signer : s.current
  return {
    issuer: s.current.issuer,
    kid: s.current.kid,
    signingKid: signing.kid,
    ...(s.previous ? {
      previousKid: s.previous.jwk.kid!,
      rotatedAt: new Date(s.rotatedAt!).toISOString(),
      activatesAt: new Date(from!).toISOString(),
      retireAfter: new Date(from! + OLD_TOKENS_VALID_MS).toISOString(),
    } : {}),
    jwks: jwksOf(s),
  }
}
