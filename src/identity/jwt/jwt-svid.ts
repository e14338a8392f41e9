// JwtSvidIssuer: the daemon's JWT-SVID signer (ES256, kid = the key's JWK thumbprint) and its
// public JWKS. The daemon persists the private JWK (toJwk/fromJwk); this module writes no file.
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose'
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import { WeftError, invalidArg } from '../../errors/index.js'
import { parseSpiffeId, trustDomainId, validTrustDomain } from '../spiffe-id.js'

/** Longest JWT-SVID lifetime (identity-plan: exp ≤ 5 min), also the default. */
export const MAX_JWT_SVID_TTL_MS = 5 * 60_000
const MIN_TTL_MS = 1_000
const MAX_AUDIENCES = 16

export interface JwtSvidIssuerOptions {
  /** The trust domain whose workloads it signs for; `iss` is `spiffe://<trustDomain>`. */
  trustDomain: string
  /** Clock (ms since the epoch), for tests. Default Date.now. */
  now?: () => number
}

export interface JwtSvidRequest {
  /** The workload's SPIFFE ID (in the issuer's trust domain); becomes `sub`. */
  subject: string
  /** Who the token is for; becomes `aud`. One string or a list of 1–16. */
  audience: string | string[]
  /** Lifetime. Default and maximum 5 min; at least 1 s. */
  ttlMs?: number
}

export interface JwtSvid {
  token: string
  /** ms since the epoch (exp × 1000). */
  expiresAt: number
}

/** The public JWKS a verifier configures (RequestAuthentication `jwks`, or the daemon's GET /v1/jwks). */
export interface Jwks {
  keys: JWK[]
}

/**
 * A JWT-SVID public key as a JWKS publishes it, from a persisted public (or private) JWK: the key
 * is checked to be a P-256 point and its kid recomputed (RFC 7638 thumbprint), never taken from
 * the input; a private part is dropped. For a key set the daemon's first cut of rotation wrote,
 * which kept the replaced key public only.
 * @throws WeftError WEFT_ERR_INVALID_ARG when the JWK is not an EC P-256 key.
 */
export async function jwtSvidPublicKey(jwk: JWK): Promise<JWK> {
  if (typeof jwk !== 'object' || jwk === null || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    invalidArg('jwk', 'must be an EC P-256 public JWK (kty EC, crv P-256, x, y)')
  }
  const publicJwk = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }
  try {
    createPublicKey({ key: publicJwk as never, format: 'jwk' })
  } catch (err) {
    throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid option jwk: not a usable P-256 public key (${(err as Error).message})`, { cause: err, details: { option: 'jwk' } })
  }
  return { ...publicJwk, kid: await calculateJwkThumbprint(publicJwk, 'sha256'), alg: 'ES256', use: 'sig' }
}

/**
 * Signs JWT-SVIDs: header `{ alg: ES256, kid, typ: JWT }`, claims `iss` = `spiffe://<td>` (the
 * trust domain, stable whichever daemon URL a workload used), `sub` = the workload's SPIFFE ID,
 * `aud`, `iat`, `exp`. Verify them with a RequestAuthentication rule `{ issuer: spiffe://<td>,
 * jwks: issuer.jwks(), audiences: [...], algorithms: [ES256] }` (principal: "spiffe://td/<sub>").
 *
 * @example
 * const issuer = await JwtSvidIssuer.create({ trustDomain: 'weft.local' })
 * const { token } = await issuer.sign({ subject: 'spiffe://weft.local/ns/default/sa/checkout', audience: 'payments' })
 */
export class JwtSvidIssuer {
  /** `spiffe://<trustDomain>`: the `iss` of every token. */
  readonly issuer: string

  private constructor(
    readonly trustDomain: string,
    /** Thumbprint of the public key (RFC 7638, SHA-256). */
    readonly kid: string,
    private readonly privateKey: CryptoKey,
    private readonly privateJwk: Readonly<JWK>,
    private readonly publicJwk: Readonly<JWK>,
    private readonly now: () => number,
  ) {
    this.issuer = trustDomainId(trustDomain).toString()
  }

  /** A new issuer with a fresh P-256 key. */
  static async create(options: JwtSvidIssuerOptions): Promise<JwtSvidIssuer> {
    validTrustDomain(options.trustDomain)
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    return JwtSvidIssuer.fromJwk(await exportJWK(privateKey), options)
  }

  /**
   * An issuer from a persisted private JWK (what toJwk returned). The kid is always recomputed
   * from the key, so a edited kid cannot detach a token from its key.
   * @throws WeftError WEFT_ERR_INVALID_ARG when the JWK is not an EC P-256 private key.
   */
  static async fromJwk(jwk: JWK, options: JwtSvidIssuerOptions): Promise<JwtSvidIssuer> {
    validTrustDomain(options.trustDomain)
    if (typeof jwk !== 'object' || jwk === null || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
      invalidArg('jwk', 'must be an EC P-256 private JWK (kty EC, crv P-256, x, y, d)')
    }
    const publicJwk = Object.freeze({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y })
    let privateKey: CryptoKey
    try {
      // A file whose d does not belong to its x/y would sign tokens no verifier accepts: prove the pair.
      const pub = createPublicKey({ key: publicJwk as never, format: 'jwk' })
      const priv = createPrivateKey({ key: { ...publicJwk, d: jwk.d } as never, format: 'jwk' })
      const probe = Buffer.from('weft jwt-svid key check')
      if (!verify('sha256', probe, pub, sign('sha256', probe, priv))) throw new Error('d does not match x and y')
      privateKey = await importJWK({ ...publicJwk, d: jwk.d }, 'ES256') as CryptoKey
    } catch (err) {
      throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid option jwk: not a usable P-256 key (${(err as Error).message})`, { cause: err, details: { option: 'jwk' } })
    }
    const kid = await calculateJwkThumbprint(publicJwk, 'sha256')
    const privateJwk = Object.freeze({ ...publicJwk, d: jwk.d, kid, alg: 'ES256', use: 'sig' })
    return new JwtSvidIssuer(options.trustDomain, kid, privateKey, privateJwk, Object.freeze({ ...publicJwk, kid, alg: 'ES256', use: 'sig' }), options.now ?? Date.now)
  }

  /** The private key as a JWK, for the daemon to persist (mode 0600). */
  toJwk(): JWK {
    return { ...this.privateJwk }
  }

  /** The public key as a JWK (kid, alg ES256, use sig): one entry of a JWKS. */
  publicKey(): JWK {
    return { ...this.publicJwk }
  }

  /** The public key set: what verifiers configure and GET /v1/jwks serves. */
  jwks(): Jwks {
    return { keys: [{ ...this.publicJwk }] }
  }

  /**
   * Signs a JWT-SVID for `subject`.
   * @throws WeftError WEFT_ERR_INVALID_ARG for a subject outside the trust domain (or not a
   * workload ID), an empty audience, or a ttl outside 1 s–5 min.
   */
  async sign(request: JwtSvidRequest): Promise<JwtSvid> {
    const id = parseSpiffeId(request.subject)
    if (id.trustDomain !== this.trustDomain) invalidArg('subject', `${id} is not in trust domain ${this.trustDomain}`)
    if (id.path === '') invalidArg('subject', `${id} is a trust domain, not a workload`)
    const audience = typeof request.audience === 'string' ? [request.audience] : request.audience
    if (!Array.isArray(audience) || audience.length === 0 || audience.length > MAX_AUDIENCES || audience.some((a) => typeof a !== 'string' || a.length === 0 || a.length > 256)) {
      invalidArg('audience', `must be a non-empty string or a list of 1–${MAX_AUDIENCES} of them (each ≤ 256 characters)`)
    }
    const ttlMs = request.ttlMs ?? MAX_JWT_SVID_TTL_MS
    if (!Number.isFinite(ttlMs) || ttlMs < MIN_TTL_MS || ttlMs > MAX_JWT_SVID_TTL_MS) invalidArg('ttlMs', `must be between ${MIN_TTL_MS} and ${MAX_JWT_SVID_TTL_MS} (got ${ttlMs})`)
    const now = this.now()
    const iat = Math.floor(now / 1000)
    const exp = Math.floor((now + ttlMs) / 1000)
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(id.toString())
      .setAudience(audience.length === 1 ? audience[0]! : audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.privateKey)
    return { token, expiresAt: exp * 1000 }
  }
}
