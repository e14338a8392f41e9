// KeySet: an immutable, loaded JWK set, looked up by kid and algorithm (kid is only ever a map key).
import { keyCanVerify, readPublicJwk, type PublicJwk } from '../../config/validate-authn.js'
import { shown } from './shown.js'

/** Most keys a token without a kid is tried against; more is an ambiguous set, not a search. */
export const MAX_KEY_TRIES = 4

export interface KeySetLoad {
  /** Undefined when no usable key was found: such a set is never installed (RELIABILITY J10). */
  set: KeySet | undefined
  /** One line per key left out and why (for a log line). */
  skipped: string[]
  /** Why the document is not a key set, when it is not one. */
  problem?: string
}

export class KeySet {
  private readonly byKid = new Map<string, PublicJwk[]>()

  private constructor(readonly keys: readonly PublicJwk[]) {
    for (const k of keys) {
      if (k.kid === undefined) continue
      const list = this.byKid.get(k.kid)
      if (list) list.push(k)
      else this.byKid.set(k.kid, [k])
    }
  }

  /** Keys from trusted config, already checked by validation. */
  static of(keys: readonly Record<string, unknown>[]): KeySet {
    return KeySet.parse({ keys }, Number.MAX_SAFE_INTEGER).set ?? new KeySet([])
  }

  /**
   * Reads a JWKS document (`{ keys: [...] }`). Unusable keys (symmetric, private, weak, malformed,
   * use other than sig) are left out and listed; at most `maxKeys` keys are kept.
   */
  static parse(doc: unknown, maxKeys: number): KeySetLoad {
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
      return { set: undefined, skipped: [], problem: 'not a JWK set (want a JSON object with a "keys" list)' }
    }
    const keys: PublicJwk[] = []
    const skipped: string[] = []
    for (const [i, raw] of ((doc as { keys: unknown[] }).keys).entries()) {
      const got = readPublicJwk(raw)
      const kid = typeof raw === 'object' && raw !== null ? (raw as { kid?: unknown }).kid : undefined
      const label = `key ${i}${kid !== undefined ? ` (kid ${shown(kid)})` : ''}`
      if ('problem' in got) skipped.push(`${label}: ${got.member ? `${got.member} ` : ''}${got.problem}`)
      else if (keys.length >= maxKeys) skipped.push(`${label}: over the limit of ${maxKeys} keys`)
      else keys.push(got.jwk)
    }
    if (keys.length === 0) return { set: undefined, skipped, problem: 'the set has no usable key' }
    return { set: new KeySet(keys), skipped }
  }

  get size(): number {
    return this.keys.length
  }

  /**
   * The keys that may have signed a token with this `kid` and `alg`: with a kid, only keys with
   * that kid (as jose's key sets do); without one, every key that fits the algorithm, at most
   * MAX_KEY_TRIES of them ('ambiguous' when more fit: the issuer must then name its key).
   */
  candidates(kid: string | undefined, alg: string): PublicJwk[] | 'ambiguous' {
    if (kid !== undefined) return (this.byKid.get(kid) ?? []).filter((k) => keyCanVerify(k, alg)).slice(0, MAX_KEY_TRIES)
    const fit = this.keys.filter((k) => keyCanVerify(k, alg))
    return fit.length <= MAX_KEY_TRIES ? fit : 'ambiguous'
  }
}
