// Rejections: the bounded list of checks a token can fail, and jose's failures mapped to a reason a
// person can act on (what failed, by how much, and whether a clock is the likely cause).
import type { PublicJwk } from '../../config/validate-authn.js'
import { printable, shown } from './shown.js'

/** Which check a rejected token failed: a bounded set, fit for a metric label. */
export type AuthnCheck =
  | 'malformed' | 'too_large' | 'multiple_tokens' | 'unsigned' | 'key_header' | 'kid' | 'issuer' | 'algorithm' | 'type'
  | 'unknown_key' | 'no_keys' | 'signature' | 'audience' | 'expired' | 'not_yet_valid' | 'claims'

export interface AuthnInvalid {
  readonly kind: 'invalid'
  /** What failed, for people (printable ASCII; token values are quoted and escaped). */
  readonly reason: string
  readonly check: AuthnCheck
  /** Set when the token's time claims suggest a clock is off (nbf or iat in the future). */
  readonly clockSkew?: true
}

/** What a rule contributes to a rejection message. */
export interface RuleView {
  readonly issuer: string
  readonly audiences: readonly string[]
  readonly algorithmList: readonly string[]
  readonly toleranceMs: number
}

/** A frozen rejection; the reason is made printable ASCII. */
export function invalid(check: AuthnCheck, reason: string, clockSkew?: true): AuthnInvalid {
  return Object.freeze({ kind: 'invalid' as const, reason: printable(reason, 600), check, ...(clockSkew ? { clockSkew } : {}) })
}

/** Maps a jose failure to the check it names, with the values a person needs to act on it. */
export function rejection(err: unknown, rule: RuleView, key: PublicJwk, claims: Record<string, unknown>, now: number): AuthnInvalid {
  const e = err as { code?: string; claim?: string; reason?: string; message?: string }
  const tolerance = human(rule.toleranceMs)
  const clock = `this host's clock reads ${iso(now)}; clock tolerance ${tolerance}`
  switch (e.code) {
    case 'ERR_JWT_EXPIRED': {
      const exp = typeof claims.exp === 'number' ? claims.exp * 1000 : now
      return invalid('expired', `the token expired ${human(now - exp)} ago (exp ${iso(exp)}; ${clock}); if it was just issued, check this host's clock and the issuer's`)
    }
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf' && e.reason === 'check_failed') {
        const nbf = (claims.nbf as number) * 1000
        return invalid('not_yet_valid', `the token is not valid until ${iso(nbf)} (nbf, ${human(nbf - now)} from now; ${clock}): the issuer's clock is ahead of this host's, or this host's is behind`, true)
      }
      if (e.claim === 'aud') {
        return e.reason === 'missing'
          ? invalid('audience', `the token has no "aud" claim; this service accepts audiences ${rule.audiences.map((a) => shown(a)).join(', ')}`)
          : invalid('audience', `the token's audience ${shown(claims.aud)} is not one this service accepts (${rule.audiences.map((a) => shown(a)).join(', ')})`)
      }
      if (e.claim === 'iss') return invalid('issuer', `the token's issuer ${shown(claims.iss)} is not ${shown(rule.issuer)}`)
      if (e.reason === 'missing') return invalid('claims', `the token has no "${e.claim}" claim, which is required`)
      return invalid('claims', printable(e.message ?? 'a claim is invalid'))
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalid('signature', `the signature does not verify with ${key.kid === undefined ? 'the' : `key ${shown(key.kid)} of the`} key set of issuer ${shown(rule.issuer)}`)
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return invalid('algorithm', `the algorithm is not allowed for issuer ${shown(rule.issuer)} (allowed: ${rule.algorithmList.join(', ')})`)
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return invalid('malformed', `not a valid JWS: ${printable(e.message ?? '')}`)
    default:
      // TypeErrors: a key that cannot verify this algorithm (filtered out before; kept for safety).
      return invalid('signature', `the token could not be verified with the key set of issuer ${shown(rule.issuer)}: ${printable(e.message ?? String(err))}`)
  }
}

export function iso(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms)
}

/** 42s, 5m3s, 2h10m: differences people read in a 401 message. */
export function human(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000)
  if (s < 120) return `${s}s`
  if (s < 7200) return `${Math.floor(s / 60)}m${s % 60}s`
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
}
