// The inbound call and target shapes every server layer passes along. A call is made once per
// request by a front end (node:http, Express, Fastify); the front end's `proceed` runs the
// application and reports back when the response has finished.
import type { IncomingHttpHeaders } from 'node:http'
import type { Tracer } from '@opentelemetry/api'
import type { Done, Handler, Layer } from '../stack/layer.js'
import type { ServerMetrics } from '../telemetry/server-metrics.js'
import type { TraceParent } from '../telemetry/tracing.js'
import type { InboundContext } from './context.js'
import type { LoadMonitor } from './load-monitor.js'
import type { RpcObserver } from '../telemetry/rpc-metrics.js'
import type { PeerIdentity } from '../identity/peer.js'
import type { AuthzEngine } from '../authz/engine.js'
import type { JwtAuthenticator } from '../identity/jwt/authenticator.js'
import type { MeshMetrics } from '../telemetry/metrics.js'
import type { Logger } from '../util/logger.js'
import type { AccessLog } from '../telemetry/access-log.js'

/** A verified end-user JWT (RequestAuthentication), set by the identity layer. */
export interface RequestAuth {
  /** "iss/sub" */
  readonly principal: string
  readonly issuer: string
  readonly subject: string
  readonly audiences: readonly string[]
  readonly claims: Readonly<Record<string, unknown>>
}

/** What a framework adapter provides: how to run the application for a call. */
export interface FrontEnd {
  /**
   * Runs the application for `call` inside its request context, then calls `done(null, call)` once
   * the response has finished, with `call.statusCode` and `call.route` filled in.
   */
  proceed(call: InboundCall, done: Done<InboundCall>): void
  /** Asks the client to close its connection once this call's response is done (drain). */
  closeAfter?(call: InboundCall): void
}

export class InboundCall {
  readonly startedAt = performance.now()
  /** Response status, set by the front end when the response finished. */
  statusCode = 0
  /** The framework's route template ("/users/:id"), never the raw path; '' when none matched. */
  route = ''
  /** gRPC calls: the final status code, set by the gRPC front end when the call ended. */
  grpcCode = -1
  /** Neighbours in the core's list of calls in flight (InFlightCalls). */
  prevInFlight: InboundCall | undefined = undefined
  nextInFlight: InboundCall | undefined = undefined
  /** The verified end-user JWT, when a RequestAuthentication applies and the request carried one. */
  auth: RequestAuth | undefined = undefined

  constructor(
    readonly method: string,
    /** Path without the query string (for authorization rules; never a metrics label). */
    readonly path: string,
    readonly headers: IncomingHttpHeaders,
    readonly context: InboundContext,
    /** The caller's service (source_service label), bounded to known-good values. */
    readonly source: string,
    /** The caller's traceparent, when it sent a valid one. */
    readonly parent: TraceParent | undefined,
    readonly frontEnd: FrontEnd,
    /** The front end's own per-request objects (req/res, request/reply). */
    readonly io: unknown,
    /** The caller's verified SPIFFE identity, when the connection is mTLS. */
    readonly peer: PeerIdentity | undefined,
    /** The raw query string (after '?', '' when none): JWTs may be read from it. */
    readonly query: string,
    /** The local port the request arrived on (0 when unknown). */
    readonly port: number,
  ) {}
}

/** Everything a server stack needs, built once per config version. */
export interface InboundTarget {
  readonly service: string
  readonly namespace: string
  readonly configVersion: number
  readonly metrics: ServerMetrics
  readonly monitor: LoadMonitor
  readonly tracer: Tracer
  /** Concurrency cap for requests in the handler (Infinity: none). */
  readonly maxConcurrent: number
  /** Shared counter of requests past the shed layer (survives config versions). */
  readonly admitted: { count: number }
  /** The wire this stack serves; the telemetry layer measures gRPC calls as rpc_server_*. */
  readonly protocol: 'http' | 'grpc'
  /** rpc_server_duration_seconds by caller (gRPC stacks). */
  readonly rpcFrom?: (source: string) => RpcObserver
  /** This version's identity and authorization (undefined parts cost nothing: their layers pass through). */
  readonly security: InboundSecurity
  /** Where the telemetry layer writes each request's access log line; undefined when off. */
  readonly accessLog?: AccessLog
}

/** What the identity and authz server layers enforce for one config version. */
export interface InboundSecurity {
  /** AuthorizationPolicy for this service; undefined when none applies and the default is ALLOW. */
  readonly authz?: AuthzEngine
  /** RequestAuthentication for this service; undefined when none selects it. */
  readonly authn?: JwtAuthenticator
  readonly metrics: MeshMetrics
  readonly logger: Logger
  /** createMesh `debug.authz`: a denial also carries the rule-by-rule explanation. */
  readonly debugAuthz?: boolean
  /**
   * Set while an instance under a control daemon has no policy of the daemon's to enforce (no view
   * applied yet and no cached one): why. Every request is refused (WEFT_ERR_CONTROL_UNAVAILABLE)
   * and /readyz answers 503 — never served without the policy that may restrict it (RELIABILITY F2b, S7).
   */
  readonly closed?: string
}

export type ServerLayer = Layer<InboundCall, InboundCall, InboundTarget>
export type ServerHandler = Handler<InboundCall, InboundCall>
