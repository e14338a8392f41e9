// RouteTarget: everything a client stack needs to know about one (service, route rule) in one
// config version. Built once per config version by the compiler; layers close over it.
import type { RetrySettings, RuleSettings, ServiceSettings } from '../config/types.js'
import type { ClientHandler } from './call.js'
import type { EndpointGroup } from '../discovery/endpoint-set.js'
import type { ServiceRuntime } from './service-runtime.js'
import type { TargetMetrics } from '../telemetry/metrics.js'
import type { RpcTargetMetrics } from '../telemetry/rpc-metrics.js'
import type { AccessLog } from '../telemetry/access-log.js'

export interface BackendTarget {
  group: EndpointGroup
  weight: number
  subset: Readonly<Record<string, string>>
  /** The Service whose endpoints the group selects: the route's, or another one the backend names. */
  owner: ServiceSettings
}

export interface RouteTarget {
  /** The calling workload (source_service). */
  readonly source: string
  readonly service: ServiceSettings
  readonly runtime: ServiceRuntime
  readonly rule: RuleSettings
  /** Route name used as a metrics label: "<route>#<n>", a rule's name, or "default". */
  readonly routeLabel: string
  readonly timeoutMs: number
  readonly retries: RetrySettings
  readonly backends: readonly BackendTarget[]
  /** Draws the backend group for a call (weighted split); retries stay in the group drawn. */
  readonly pickGroup: () => EndpointGroup
  readonly configVersion: number
  readonly metrics: TargetMetrics
  /**
   * The wire the stack is built for. A rule gets one stack per protocol it is called with; layers
   * that differ (telemetry, retry conditions) choose at wrap time, never per request.
   */
  readonly protocol: 'http' | 'grpc'
  /** rpc_client_duration_seconds for the target (gRPC stacks only). */
  readonly rpcMetrics?: RpcTargetMetrics
  /** The rule's traffic mirror, compiled (routing/mirror-layer.ts). */
  readonly mirror?: MirrorTarget
  /** Where the telemetry layer writes each call's access log line; undefined when off. */
  readonly accessLog?: AccessLog
}

/** The backends whose endpoints belong to another Service than the target's (routing's backends by Service). */
export function foreignBackends(target: RouteTarget): BackendTarget[] {
  return target.backends.filter((b) => b.group.set !== target.runtime.endpoints)
}

/** Where a rule's mirrored copies go: a stack of their own, built with the rule's. */
export interface MirrorTarget {
  readonly percent: number
  /** The copy's target: the mirror service's endpoints with the subset, no retries, no breaker. */
  readonly target: RouteTarget
  readonly handler: ClientHandler
}
