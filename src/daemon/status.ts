// Per-instance sync status, as this daemon sees it: the last version sent to the instance's
// streams, the last it ACKed, its last NACK, when it was last heard from (registration, stream
// open, heartbeat, ACK), and whether a stream is open here. Kept in memory: after a restart every
// instance reconnects and reports again. With a shared store (etcd) an instance whose stream is
// open on another daemon is ELSEWHERE: its sync state lives in that daemon's memory. An instance
// that keeps an inbound policy the daemon dropped without deleting it (RELIABILITY F5) says so in
// its ACKs: `keptDeleted`.

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'DISCONNECTED' | 'ELSEWHERE'

export interface InstanceStatus {
  state: SyncState
  sentVersion?: number
  ackedVersion?: number
  nack?: { version: number; error: string }
  /** ISO time of the last call, heartbeat or stream event from the instance seen here. */
  lastSeen?: string
  /** ELSEWHERE: the URL of the daemon holding its stream. */
  daemon?: string
  /** How its last watch stream here came: mTLS with its certificate, or plaintext with a token. */
  control?: 'mtls' | 'plaintext'
  /**
   * What it keeps although the daemon's view dropped it without a DELETE ("Kind/namespace/name"),
   * as its last ACK or NACK said; absent when nothing (or an instance too old to say).
   */
  keptDeleted?: string[]
}

interface Entry {
  control?: 'mtls' | 'plaintext'
  sentVersion?: number
  ackedVersion?: number
  nack?: { version: number; error: string }
  lastSeen?: number
  kept?: string[]
}

export class StatusBoard {
  private readonly entries = new Map<string, Entry>()

  private entry(id: string): Entry {
    let e = this.entries.get(id)
    if (!e) this.entries.set(id, (e = {}))
    return e
  }

  /** A (re)registration: a fresh record (a re-registered id may be a new process). */
  registered(id: string): void {
    this.entries.set(id, { lastSeen: Date.now() })
  }

  /** A watch stream opened (the instance may have registered through another daemon). */
  opened(id: string, mtls = false): void {
    const e = this.entry(id)
    e.lastSeen = Date.now()
    e.control = mtls ? 'mtls' : 'plaintext'
  }

  /** Any call or stream event from an instance this board knows (a deleted one stays forgotten). */
  seen(id: string): void {
    const e = this.entries.get(id)
    if (e) e.lastSeen = Date.now()
  }

  sent(id: string, version: number): void {
    const e = this.entries.get(id)
    if (e) e.sentVersion = version
  }

  /**
   * A stream opened holding `held` = the current version, so nothing is sent. That is what the
   * stream holds, not an ACK: the instance ACKs the version it applied itself (a NACKed one is
   * never what it resumes with), and stays STALE here until it does.
   */
  resumed(id: string, held: number): void {
    this.entry(id).sentVersion = held
  }

  /** `kept`: what the ACK says the instance keeps (undefined: it does not say, the last report stays). */
  ack(id: string, version: number, error: string | undefined, kept?: string[]): void {
    const e = this.entry(id)
    e.lastSeen = Date.now()
    if (kept !== undefined) e.kept = kept.length > 0 ? kept : undefined
    if (error !== undefined) {
      e.nack = { version, error }
      return
    }
    // An ACK above what this daemon sent the instance is another daemon's number: daemons sharing a
    // store can number one content differently, and an instance failing over resends its ACK of the
    // old daemon's (higher) number, then takes this daemon's lower number for the same view
    // (views.ts staleReason). It says nothing about this daemon's view: recorded, it left the
    // instance STALE here until the next change (the etcd-failover test, in CI).
    if (e.sentVersion !== undefined && version > e.sentVersion) return
    // Otherwise versions only grow: an older ACK arriving late (a resend, a resume) does not move it
    // back — but an ACK of exactly what this daemon last sent is what the instance runs now.
    if (e.ackedVersion === undefined || version > e.ackedVersion || version === e.sentVersion) e.ackedVersion = version
    if (e.nack !== undefined && e.nack.version <= version) e.nack = undefined
  }

  /** The instance left the registry. */
  forget(id: string): void {
    this.entries.delete(id)
  }

  /** `elsewhere`: the daemon holding its stream, when that is another one. */
  view(id: string, connected: boolean, elsewhere?: string): InstanceStatus {
    const e = this.entries.get(id) ?? {}
    let state: SyncState
    if (!connected && elsewhere !== undefined) state = 'ELSEWHERE'
    else if (!connected) state = 'DISCONNECTED'
    else if (e.nack !== undefined && (e.ackedVersion === undefined || e.nack.version > e.ackedVersion)) state = 'NACKED'
    else if (e.sentVersion !== undefined && e.ackedVersion === e.sentVersion) state = 'SYNCED'
    else state = 'STALE'
    const lastSeen = e.lastSeen
    return {
      ...(state === 'ELSEWHERE' ? { daemon: elsewhere } : {}),
      state,
      ...(e.sentVersion !== undefined ? { sentVersion: e.sentVersion } : {}),
      ...(e.ackedVersion !== undefined ? { ackedVersion: e.ackedVersion } : {}),
      ...(e.nack !== undefined ? { nack: e.nack } : {}),
      ...(lastSeen !== undefined ? { lastSeen: new Date(lastSeen).toISOString() } : {}),
      ...(e.control !== undefined ? { control: e.control } : {}),
      ...(e.kept !== undefined ? { keptDeleted: e.kept } : {}),
    }
  }
}
