// The control protocol's messages, shared by the instance side (src/control) and the daemon
// (src/daemon). HTTP + JSON; the watch stream is newline-delimited JSON. See
// docs/design/control-plan.md for the calls and their semantics.

/**
 * The control protocol's level. Raise it when a message gains a field or a meaning that an older
 * peer does not know of. Instances send theirs on every call (`weft-protocol`); a daemon takes
 * fields it does not know from an instance of a higher level (a rolling upgrade: the newer instance
 * still registers and ACKs) and names them back in `weft-warning`; from an instance of its own level
 * or lower an unknown field is a 400 (a typo). The other way, a daemon names in a message's
 * `critical` what an instance must understand to take it (views.ts). docs/design/control-plan.md,
 * "Version skew". Level 2: a heartbeat may carry `traffic` (the instance's RED totals, for `weft top`).
 */
export const CONTROL_PROTOCOL = 2
export const PROTOCOL_HEADER = 'weft-protocol'
/** Answer header naming the fields of the request the daemon ignored (a newer instance's). */
export const WARNING_HEADER = 'weft-warning'
/** Request header the CLI fills with "user@host" on admin calls: who is at the admin token, as the client says (logged with each admin change). */
export const ACTOR_HEADER = 'weft-actor'

/** One serving address of a registered instance, as pushed to watchers. */
export interface RegisteredEndpoint {
  /** "host:port" */
  address: string
  protocol: 'http' | 'grpc'
  /** The registration's labels plus zone/region from its locality. */
  labels: Record<string, string>
  /** Id of the instance serving it. */
  instance: string
}

/**
 * Registry endpoints by service, keyed "<namespace>/<name>" (service-key.ts): a registration joins
 * only the Service of its own namespace.
 */
export type EndpointMap = Record<string, RegisteredEndpoint[]>

/** The whole view: sent first on a watch and after every policy change. */
export interface SnapshotMessage {
  type: 'snapshot'
  version: number
  /** Policy resources as applied (apiVersion/kind/metadata/spec objects). */
  resources: object[]
  endpoints: EndpointMap
  /**
   * Resources removed on purpose (a DELETE or a rollback) lately, as "kind/namespace/name", absent
   * from `resources` (at most the daemon's recent 1,000). A policy resource an instance held that is
   * missing here without being listed was dropped by mistake (RELIABILITY F5): the instance keeps its
   * AuthorizationPolicy and RequestAuthentication (src/control/deletion-guard.ts). Absent: none.
   */
  deleted?: string[]
  /** Protocol features the instance must understand to take this message (views.ts); absent: none. */
  critical?: string[]
}

/** Only the registry changed: the full endpoint list of each changed service (empty when gone). */
export interface EndpointsMessage {
  type: 'endpoints'
  version: number
  /** The version this delta applies on top of. */
  base: number
  endpoints: EndpointMap
}

/**
 * The policy changed (and maybe some endpoints): the whole resource list, plus the full endpoint
 * list of each service that changed. Endpoints of other services are not resent — with many
 * instances they are most of a snapshot's bytes.
 */
export interface PolicyMessage {
  type: 'policy'
  version: number
  base: number
  resources: object[]
  endpoints: EndpointMap
  /** Resources removed on purpose since `base` (see SnapshotMessage.deleted). Absent: none. */
  deleted?: string[]
  /** See SnapshotMessage.critical. */
  critical?: string[]
}

export interface PingMessage {
  type: 'ping'
  version: number
}

/**
 * The CA's trust bundle (roots of the trust domain, with a sequence that only grows): sent first on
 * a stream opened with `bundle=1` and again when it changes (root rotation). Not config: `version`
 * is only the stream's current version, and an instance takes the bundle only when its sequence is
 * newer than the one it holds.
 */
export interface BundleMessage {
  type: 'bundle'
  version: number
  bundle: { trustDomain: string; sequence: number; roots: string[] }
}

export type WatchMessage = SnapshotMessage | EndpointsMessage | PolicyMessage | PingMessage | BundleMessage

/** POST /v1/instances/:id/svid */
export interface SvidRequest {
  /** PEM PKCS#10; its URI SAN must be the instance's own SPIFFE ID. */
  csr: string
}

export interface SvidResponse {
  /** Leaf first, then intermediates. */
  certChain: string[]
  bundle: BundleMessage['bundle']
  /** ISO times. */
  notBefore: string
  notAfter: string
}

export interface RegisterRequest {
  id?: string
  service: string
  namespace?: string
  address?: string
  port?: number
  protocol?: 'http' | 'grpc'
  labels?: Record<string, string>
  locality?: { region?: string; zone?: string }
}

export interface RegisterResponse {
  id: string
  token: string
  leaseTtlMs: number
}

export interface AckRequest {
  version: number
  /** Present for a NACK: why the version could not be applied. */
  error?: string
  /**
   * The inbound policies this instance keeps although the daemon's view dropped them without deleting
   * them (RELIABILITY F5, src/control/deletion-guard.ts), as "Kind/namespace/name". Sent while
   * something is kept, then once as [] (absent otherwise, and from older instances: the daemon keeps
   * what it was last told, nothing for an instance that never said).
   */
  kept?: string[]
}

/** The body of every error answer. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown }
}

/**
 * The daemon's own workload name: its API's TLS certificate is the SVID
 * `spiffe://<td>/ns/weft-system/sa/weft-daemon`, which an instance checks before it sends anything.
 */
export const DAEMON_NAMESPACE = 'weft-system'
export const DAEMON_SERVICE = 'weft-daemon'
