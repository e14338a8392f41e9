// The daemon's JWT-SVID issuer (identity issue): an ES256 key made at first start into
// <dataDir>/ca/jwt-key.json (0600), or, on a store daemons share (etcd), into the store, so every
// daemon signs with one key and serves one JWKS; tokens signed for the identity an instance's
// registration holds and an audience it names, and the public JWKS that verifiers configure.
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { JwtSvidIssuer, type Jwks, type JwtSvid } from '../identity/jwt/jwt-svid.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { badRequest } from './http-error.js'
import type { SharedDoc } from './store.js'

const AUDIENCE = /^[\x21-\x7e]{1,256}$/

export class JwtService {
  private constructor(private readonly issuer: JwtSvidIssuer) {}

  /** `shared`: the store's `jwt-key` document when daemons share the store; else the data dir's file. */
  static async open(dataDir: string, trustDomain: string, shared?: SharedDoc): Promise<JwtService> {
    const file = join(dataDir, 'ca', 'jwt-key.json')
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    })
    if (shared) {
      // Create-only: of daemons starting together, one key wins and the others adopt it. A key this
      // daemon made before it shared the store is the one it offers, so verifiers' cached JWKS hold.
      let inForce = await shared.get()
      if (!inForce) {
        const offer = text !== undefined ? await fromText(text, trustDomain, file) : await JwtSvidIssuer.create({ trustDomain })
        inForce = await shared.createIfAbsent(JSON.stringify(offer.toJwk()))
      }
      return new JwtService(await fromText(inForce.value, trustDomain, 'the JWT-SVID key in the shared store'))
    }
    if (text !== undefined) return new JwtService(await fromText(text, trustDomain, file))
    const issuer = await JwtSvidIssuer.create({ trustDomain })
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    await writeFileAtomic(file, JSON.stringify(issuer.toJwk()) + '\n', 0o600)
    return new JwtService(issuer)
  }

  /** `spiffe://<td>`: the `iss` a RequestAuthentication for JWT-SVIDs names. */
  get issuerName(): string {
    return this.issuer.issuer
  }

  jwks(): Jwks {
    return this.issuer.jwks()
  }

  /** POST /v1/instances/:id/jwt-svid body { audience } for the instance whose SPIFFE ID is `subject`. */
  async sign(subject: string, body: Record<string, unknown>): Promise<JwtSvid> {
    for (const k of Object.keys(body)) if (k !== 'audience' && k !== 'ttlMs') throw badRequest(`jwt-svid: unknown field "${k}" (allowed: audience, ttlMs)`)
    const aud = body.audience
    const list = Array.isArray(aud) ? aud : [aud]
    if (list.length === 0 || list.length > 16 || !list.every((a) => typeof a === 'string' && AUDIENCE.test(a))) throw badRequest('jwt-svid: audience must be a string (or 1 to 16 strings) of printable characters, at most 256 each')
    const ttl = body.ttlMs
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 1000 || ttl > 5 * 60_000)) throw badRequest('jwt-svid: ttlMs must be from 1000 to 300000')
    return this.issuer.sign({ subject, audience: list as string[], ...(ttl !== undefined ? { ttlMs: ttl as number } : {}) })
  }
}

async function fromText(text: string, trustDomain: string, where: string): Promise<JwtSvidIssuer> {
  try {
    return await JwtSvidIssuer.fromJwk(JSON.parse(text), { trustDomain })
  } catch (err) {
    throw new Error(`${where} is not a readable JWT-SVID key (${(err as Error).message})`, { cause: err })
  }
}
