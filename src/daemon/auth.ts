// Who is calling: admin, a join token, or an instance. Tokens are random 256-bit secrets; the store
// keeps only their SHA-256, and every comparison of a presented token with a stored hash is
// constant-time (crypto.timingSafeEqual over the two digests), so neither a leaked store nor a
// timing side channel gives a token away.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../util/atomic-file.js'
import type { Logger } from '../util/logger.js'
import type { PeerIdentity } from '../identity/peer.js'
import { HttpError } from './http-error.js'
import type { InstanceRecord, JoinToken, Store } from './store.js'

// Prefixes say what a token is when it turns up in a shell history or a config file. An instance
// token carries its instance id (not secret) so the daemon knows which record to check it against:
// "instance token for another id" is then a 403, not a 401.
const ADMIN_PREFIX = 'wa.'
const JOIN_PREFIX = 'wj.'
const INSTANCE_PREFIX = 'wi.'

export const ADMIN_TOKEN_FILE = 'admin.token'
export const JOIN_TOKEN_FILE = 'join.token'
/** `authorization: Bearer <token>`, the token at most 512 characters. */
const BEARER = /^Bearer[ ]+(\S{1,512})\s*$/i

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Constant-time equality of two hex SHA-256 digests (false when either is malformed). */
export function sameHash(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false
  const x = Buffer.from(a, 'hex')
  const y = Buffer.from(b, 'hex')
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y)
}

function secret(): string {
  return randomBytes(32).toString('base64url')
}

export function newInstanceToken(id: string): string {
  return `${INSTANCE_PREFIX}${Buffer.from(id).toString('base64url')}.${secret()}`
}

export type Caller =
  | { kind: 'admin' }
  | { kind: 'join'; hash: string; join: JoinToken }
  /** Claims to be instance `id`; verified against that instance's record by the route. */
  | { kind: 'instance'; hash: string; id: string }
  /** An mTLS client whose SVID (checked at the handshake) is `id`, the SPIFFE ID. */
  | { kind: 'certificate'; id: string }

/** A caller known by the token it sent. */
export type TokenCaller = Exclude<Caller, { kind: 'certificate' }>

/**
 * What a call presents: its authorization header, and the client certificate's checked identity
 * when it came over mTLS (daemon-identity.ts). A header, when sent, is what is judged.
 */
export interface Credentials {
  header: string | undefined
  peer?: PeerIdentity | undefined
}

export class Auth {
  private adminHash: string | undefined

  constructor(private readonly store: Store) {}

  /**
   * First start (no admin hash in the store): makes the admin token and an any-service join
   * token, writes them to <dataDir> (0600), sets the admin hash create-only and prints them once.
   * The files are written before the hash is stored: a crash in between leaves no admin hash, so
   * the next start makes new ones instead of leaving a hash whose token nobody has. Of daemons
   * starting together on one etcd store, one sets the hash; the others adopt it, remove the token
   * files they wrote (their tokens are void) and say where the admin token is.
   */
  async init(dataDir: string, print: (line: string) => void, logger: Logger): Promise<void> {
    const adminFile = join(dataDir, ADMIN_TOKEN_FILE)
    const joinFile = join(dataDir, JOIN_TOKEN_FILE)
    this.adminHash = await this.store.adminTokenHash()
    if (this.adminHash !== undefined) {
      if (!(await fileHoldsToken(adminFile, this.adminHash))) logger.info(elsewhereNote(adminFile))
      return
    }
    const admin = ADMIN_PREFIX + secret()
    const joinToken = JOIN_PREFIX + secret()
    await writeFileAtomic(adminFile, admin + '\n', 0o600)
    await writeFileAtomic(joinFile, joinToken + '\n', 0o600)
    const adminHash = hashToken(admin)
    const inForce = await this.store.createAdminTokenHash(adminHash)
    this.adminHash = inForce
    if (inForce !== adminHash) {
      // Another daemon on the same store got there first: these tokens were never valid.
      await Promise.all([rm(adminFile, { force: true }), rm(joinFile, { force: true })])
      logger.warn(elsewhereNote(adminFile))
      return
    }
    await this.store.addJoinToken({ hash: hashToken(joinToken), services: ['*'], createdAt: new Date().toISOString() })
    print(`weft daemon: admin token (saved in ${adminFile}; shown only now): ${admin}`)
    print(`weft daemon: join token for any service (saved in ${joinFile}; shown only now): ${joinToken}`)
  }

  /** POST /v1/tokens: a new join token; only its hash is kept. */
  async createJoinToken(services: string[], namespace: string | undefined): Promise<string> {
    const token = JOIN_PREFIX + secret()
    await this.store.addJoinToken({ hash: hashToken(token), services, ...(namespace !== undefined ? { namespace } : {}), createdAt: new Date().toISOString() })
    return token
  }

  /** The caller behind an authorization header; 401 when there is none or it is unknown. */
  async identify(header: string | undefined): Promise<TokenCaller> {
    const m = header === undefined ? null : BEARER.exec(header)
    if (!m) throw unauthenticated(header === undefined || header.trim() === '' ? 'no authorization header (want "authorization: Bearer <token>")' : 'the authorization header is not "Bearer <token>"')
    const token = m[1]!
    const hash = hashToken(token)
    if (sameHash(hash, this.adminHash)) return { kind: 'admin' }
    const found = await this.store.findJoinToken(hash)
    if (found && sameHash(hash, found.hash)) return { kind: 'join', hash, join: found }
    if (token.startsWith(INSTANCE_PREFIX)) {
      const [idPart, rest] = token.slice(INSTANCE_PREFIX.length).split('.', 2)
      const id = idPart ? Buffer.from(idPart, 'base64url').toString() : ''
      if (id !== '' && rest) return { kind: 'instance', hash, id }
    }
    throw unauthenticated('unknown token')
  }

  /** True when the authorization header carries the admin token (for the listener split: no store read). */
  isAdminHeader(header: string | undefined): boolean {
    const m = header === undefined ? null : BEARER.exec(header)
    return m !== null && sameHash(hashToken(m[1]!), this.adminHash)
  }

  /** Admin calls: an instance or join token is valid but has no right here (403). */
  async requireAdmin(header: string | undefined): Promise<void> {
    const caller = await this.identify(header)
    if (caller.kind === 'admin') return
    if (caller.kind === 'instance' && !(await this.instanceTokenValid(caller))) throw unauthenticated('unknown token')
    throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `this call needs the admin token (a ${caller.kind} token was sent)`)
  }

  /** A join token for register: 403 when it cannot register `service` in `namespace`. */
  async requireJoin(header: string | undefined, service: string, namespace: string | undefined): Promise<{ hash: string; join: JoinToken }> {
    const caller = await this.identify(header)
    if (caller.kind !== 'join') {
      if (caller.kind === 'instance' && !(await this.instanceTokenValid(caller))) throw unauthenticated('unknown token')
      throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `register needs a join token (a ${caller.kind} token was sent; POST /v1/tokens makes one)`)
    }
    const { join: t } = caller
    if (!t.services.includes('*') && !t.services.includes(service)) {
      throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `this join token cannot register service "${service}" (it may register ${t.services.join(', ')})`)
    }
    if (t.namespace !== undefined && namespace !== undefined && namespace !== t.namespace) {
      throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `this join token is for namespace "${t.namespace}", not "${namespace}"`)
    }
    return caller
  }

  /**
   * Calls on instance `id`: its own token, the join token that registered it, or (over mTLS, with
   * no token) a certificate of the registration's identity; with `allowAdmin`
   * (DELETE) the admin token too. An instance token that is not the current one of a known
   * instance is 401 "unknown token" whether the id exists or not (no existence oracle for a
   * forged token); the instance registers again on it. `rec` undefined → 404 for an admin or join
   * token (credentials that may know ids).
   */
  async requireInstance(creds: Credentials, id: string, rec: InstanceRecord | undefined, allowAdmin = false): Promise<Caller> {
    if (creds.header === undefined && creds.peer) return certificateOf(creds.peer, id, rec)
    const caller = await this.identify(creds.header)
    if (caller.kind === 'admin') {
      if (!allowAdmin) throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `the admin token cannot act as instance "${id}" (use its instance token)`)
      if (!rec) throw notFoundInstance(id)
      return caller
    }
    if (caller.kind === 'instance' && caller.id === id) {
      if (rec && sameHash(caller.hash, rec.tokenHash)) return caller
      // Unknown id, or not its current token: the same answer (expired, deleted, re-registered,
      // a restarted daemon — or a forged token).
      throw unauthenticated(UNKNOWN_INSTANCE_TOKEN)
    }
    if (caller.kind === 'instance' && !(await this.instanceTokenValid(caller))) throw unauthenticated('unknown token')
    if (!rec) {
      if (caller.kind === 'instance') throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `this instance token is for instance "${caller.id}", not "${id}"`)
      // The record (with the hash to check against) is gone: expired, or a restarted daemon.
      throw notFoundInstance(id)
    }
    if (sameHash(caller.hash, rec.joinHash)) return caller
    throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', caller.kind === 'instance'
      ? `this instance token is for instance "${caller.id}", not "${id}"`
      : `this join token did not register instance "${id}"`)
  }

  private async instanceTokenValid(caller: { hash: string; id: string }): Promise<boolean> {
    const rec = await this.store.getInstance(caller.id)
    return rec !== undefined && sameHash(caller.hash, rec.tokenHash)
  }
}

/**
 * An instance's call made with its certificate: the SVID names a service, not an instance, so any
 * instance of that service and namespace may act for the others (the trust a per-service join
 * token already gives). Another identity is 403; an id the daemon does not know is 404 (register
 * again, with the join token, over the same mTLS).
 */
function certificateOf(peer: PeerIdentity, id: string, rec: InstanceRecord | undefined): Caller {
  if (!rec) throw notFoundInstance(id)
  if (peer.namespace === rec.namespace && peer.service === rec.service) return { kind: 'certificate', id: peer.id }
  throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `this certificate is ${peer.id}; instance "${id}" is ${rec.service} in namespace ${rec.namespace}`)
}

const UNKNOWN_INSTANCE_TOKEN = 'unknown token (an instance token the daemon does not know: its instance expired, was deleted or registered again, or the daemon restarted; register again)'

/** The token file in the data dir holds the token of `hash`. */
async function fileHoldsToken(file: string, hash: string): Promise<boolean> {
  const text = await readFile(file, 'utf8').catch(() => undefined)
  return text !== undefined && sameHash(hashToken(text.trim()), hash)
}

function elsewhereNote(adminFile: string): string {
  return `weft daemon: this store's admin token was made by another daemon sharing it (the first to start), so it is not in ${adminFile}: ` +
    'use the admin.token of that daemon\'s data dir, with --token or WEFT_TOKEN (`weft` commands take --data-dir of this daemon for its address)'
}

function unauthenticated(why: string): HttpError {
  return new HttpError(401, 'WEFT_ERR_UNAUTHENTICATED', `not authenticated: ${why}`)
}

export function notFoundInstance(id: string): HttpError {
  return new HttpError(404, 'WEFT_ERR_NOT_FOUND', `no instance "${id}" (expired, deleted, or the daemon restarted): register again`)
}
