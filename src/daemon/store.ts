// The daemon's store contract: policy (versioned, with history), the instance registry (with
// leases), tokens and, on a store daemons share, the identity documents. Two implementations: the
// embedded store (files in a data dir, registry in memory) and the etcd store (adapters/etcd). The
// daemon's logic only sees this interface.

/** A policy resource as stored: its identity and the resource object as applied. */
export interface StoredResource {
  kind: string
  namespace: string
  name: string
  /** The resource object (apiVersion, kind, metadata, spec), JSON-safe. */
  value: object
}

export interface PolicyState {
  version: number
  resources: StoredResource[]
  /**
   * What wrote this version (its history entry's action); undefined when unknown (no policy yet, or
   * the policy vanished from etcd). Only `delete` and `rollback` remove resources on purpose: `apply`
   * upserts. The push hub tells instances which removals were intended (RELIABILITY F5).
   */
  action?: HistoryEntry['action']
}

export interface HistoryEntry {
  version: number
  /** ISO time of the change. */
  at: string
  action: 'apply' | 'delete' | 'rollback'
  /** One line: what changed ("created Route/payments-canary; updated Service/payments"). */
  summary: string
}

/** A registration as the store keeps it. */
export interface InstanceRecord {
  id: string
  service: string
  namespace: string
  address?: string
  port?: number
  protocol: 'http' | 'grpc'
  labels: Record<string, string>
  locality?: { region?: string; zone?: string }
  /** SHA-256 (hex) of the instance token. */
  tokenHash: string
  /** SHA-256 (hex) of the join token that registered it. */
  joinHash: string
  registeredAt: string
  /**
   * The URL of the daemon whose watch stream holds it, while one does (set by attach, dropped by
   * detach): with a shared store, the other daemons show the instance as connected elsewhere.
   */
  heldBy?: string
}

export interface JoinToken {
  /** SHA-256 (hex) of the token. */
  hash: string
  /** Services it may register; ["*"] for any. */
  services: string[]
  namespace?: string
  createdAt: string
}

/** A change the store reports; `revision` orders all changes of one store. */
export type StoreEvent =
  | { type: 'policy'; revision: number; state: PolicyState }
  | { type: 'instances'; revision: number; put: InstanceRecord[]; deleted: string[] }

export class ConflictError extends Error {
  constructor(readonly expected: number, readonly actual: number) {
    super(`policy changed meanwhile (expected version ${expected}, store has ${actual})`)
  }
}

/** A shared document's text and the store's revision of it (etcd: its mod revision). */
export interface SharedDocVersion {
  value: string
  revision: number
}

/**
 * What daemons sharing one store must agree on to be one mesh: the CA's state (its signing key, so
 * any daemon signs for the same root), an operator CA's bundle sequence (never its key) and the
 * JWT-SVID key (one JWKS).
 */
export type SharedDocName = 'ca' | 'ca-operator-bundle' | 'jwt-key'

/** One shared document: text the store keeps as is; writes are create-only or compare-and-set. */
export interface SharedDoc {
  get(): Promise<SharedDocVersion | undefined>
  /** Writes `value` unless the document exists; resolves with the one in force, `created` when that is `value`. */
  createIfAbsent(value: string): Promise<SharedDocVersion & { created: boolean }>
  /** Writes `value` if the document is still at `revision`: the new revision, or undefined when another write came first. */
  compareAndSet(value: string, revision: number): Promise<number | undefined>
  /**
   * Calls `listener` with every version after `afterRevision`, written by any daemon (this one
   * included), until the store closes. Resolves once watching.
   */
  watch(afterRevision: number, listener: (doc: SharedDocVersion) => void): Promise<void>
}

export interface Store {
  /** Loads state; for etcd, connects and starts watching. */
  open(): Promise<void>
  /** The current revision: the version an instance is told. */
  revision(): number

  readPolicy(): Promise<PolicyState>
  /**
   * Writes the whole policy as a new version if the stored version is still `expectedVersion`
   * (else throws ConflictError); records the history entry. Resolves with the new version.
   */
  writePolicy(resources: StoredResource[], entry: Pick<HistoryEntry, 'action' | 'summary'>, expectedVersion: number): Promise<number>
  /** Newest first, at most `limit`. */
  history(limit?: number): Promise<HistoryEntry[]>
  /** The resources as they were at `version`, if that version is still kept. */
  policyAt(version: number): Promise<StoredResource[] | undefined>

  /** Adds or replaces an instance and holds it alive (its watch stream is open on this daemon). */
  attachInstance(rec: InstanceRecord): Promise<void>
  /** The stream closed: the instance lives `ttlMs` more unless attached again; `heldBy` is dropped. */
  detachInstance(id: string, ttlMs: number): Promise<void>
  deleteInstance(id: string): Promise<void>
  getInstance(id: string): Promise<InstanceRecord | undefined>
  listInstances(): Promise<InstanceRecord[]>

  addJoinToken(t: JoinToken): Promise<void>
  findJoinToken(hash: string): Promise<JoinToken | undefined>
  /** The admin token's hash (set once at first start). */
  adminTokenHash(): Promise<string | undefined>
  /**
   * Sets the admin token's hash unless one is set (create-only: of daemons starting together on
   * one etcd, one wins); resolves with the hash in force, which is the caller's only if it won.
   */
  createAdminTokenHash(hash: string): Promise<string>

  /**
   * The identity documents, on a store several daemons share (etcd). Absent (embedded store): the
   * daemon keeps them in files in its data dir.
   */
  sharedDoc?(name: SharedDocName): SharedDoc

  /** Every change, from this daemon or (etcd) another. */
  onEvent(listener: (e: StoreEvent) => void): void
  close(): Promise<void>
}
