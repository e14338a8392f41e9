// Where a rule's keys come from, as one interface: a remote set (RemoteJwks, jwks-cache.ts) or keys
// written inline in config (StaticJwks, here).
import type { PublicJwk } from '../../config/validate-authn.js'
import { KeySet } from './key-set.js'
import { shown } from './shown.js'

/** What a key source answers for one token's kid and algorithm. */
export type KeyLookup =
  | { readonly kind: 'keys'; readonly keys: readonly PublicJwk[] }
  | {
    readonly kind: 'miss'
    readonly check: 'unknown_key' | 'no_keys'
    /** Safe to send to the client: no URI, no network error (they can name internal hosts). */
    readonly reason: string
    /** For logs only: the URI and the last download error. */
    readonly detail?: string
  }

/** Where a rule's keys come from: a remote set (RemoteJwks) or keys inline in config (StaticJwks). */
export interface KeySource {
  resolve(kid: string | undefined, alg: string): Promise<KeyLookup>
  /** For `weft explain` and logs: the URI, or "inline (N keys)". */
  readonly description: string
}

/** Keys written inline in config (`jwks`): nothing to fetch, nothing to refresh. */
export class StaticJwks implements KeySource {
  private readonly set: KeySet

  constructor(keys: readonly Record<string, unknown>[]) {
    this.set = KeySet.of(keys)
  }

  get description(): string {
    return `inline (${this.set.size} key${this.set.size === 1 ? '' : 's'})`
  }

  async resolve(kid: string | undefined, alg: string): Promise<KeyLookup> {
    const found = this.set.candidates(kid, alg)
    if (found === 'ambiguous') return { kind: 'miss', check: 'unknown_key', reason: `the token has no kid and more than one inline ${alg} key fits; the issuer must name its key (kid)` }
    if (found.length > 0) return { kind: 'keys', keys: found }
    if (this.set.size === 0) return { kind: 'miss', check: 'no_keys', reason: 'the inline key set has no usable key' }
    return { kind: 'miss', check: 'unknown_key', reason: `no inline ${alg} key${kid === undefined ? '' : ` with kid ${shown(kid)}`}` }
  }
}

