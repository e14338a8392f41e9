// The mesh's config-apply path: compiles a MeshPolicy into a Snapshot and the inbound security of
// the same version, and keeps what lives across versions (per-service runtimes with their
// connection pools, per-target metrics, remote JWKS caches, the warnings already said). Apart from
// Mesh so the mesh reads as the lifecycle/API object; this runs once per config version, never per
// request. The fields the hot path reads (the snapshot in use) stay on Mesh: the swap is its
// install() callback, so a request pays no extra indirection for this split.
import type { ClientStack } from './client-stack.js'
import { compileSnapshot, type Snapshot } from './compile.js'
import type { ConfigIssue, MeshPolicy, ServiceSettings } from './config/types.js'
import { formatIssue } from './config/validate.js'
import type { Endpoint } from './discovery/endpoint.js'
import { WeftError } from './errors/index.js'
import type { InboundSecurity } from './inbound/call.js'
import { compileInboundSecurity } from './inbound/security.js'
import { JwksRegistry } from './identity/jwt/jwks-cache.js'
import type { MeshOptions } from './options.js'
import type { ClientHandler } from './stack/call.js'
import type { ServiceRuntime } from './stack/service-runtime.js'
import type { MeshMetrics, TargetMetrics } from './telemetry/metrics.js'
import type { Logger } from './util/logger.js'
import type { AccessLog } from './telemetry/access-log.js'

export interface ConfigEvent {
  version: number
  warnings: ConfigIssue[]
}

export interface ApplyDeps {
  service: string
  namespace: string
  options: MeshOptions
  logger: Logger
  metrics: MeshMetrics
  stack: ClientStack
  /** The HTTP terminal handler every rule's stack ends in. */
  terminal: ClientHandler
  /** The gRPC terminal handler; asked for only when a gRPC call uses a rule. */
  grpcTerminal: () => ClientHandler
  /** Config comes from a control daemon (some warnings are then the registry's passing state). */
  underDaemon: () => boolean
  /** The access log (outbound lines are written for targets compiled with it). */
  accessLog?: AccessLog
  /** Swaps a compiled version in (the mesh's snapshot and inbound security). */
  install(snapshot: Snapshot, security: InboundSecurity, version: number): void
}

export class ConfigApplier {
  private readonly runtimes = new Map<string, ServiceRuntime>()
  private readonly targetMetrics = new Map<string, TargetMetrics>()
  /** Remote JWKS caches, made with the first RequestAuthentication and kept across versions. */
  private jwks: JwksRegistry | undefined
  private version = 0
  /** The warnings of the version in use, formatted: the next version logs only new ones. */
  private warned = new Set<string>()

  constructor(private readonly d: ApplyDeps) {}

  /**
   * Compiles and swaps in a policy; `version` is the daemon's (control mode) or the next local one.
   * `inboundClosed`: this version serves outbound calls only; inbound requests are refused with
   * that reason (an instance under a daemon with no policy of the daemon's yet). Resolves with the
   * 'config' event to emit; throws (nothing swapped) when security does not compile.
   */
  async apply(policy: MeshPolicy, version = this.version + 1, inboundClosed?: string): Promise<ConfigEvent> {
    const d = this.d
    // First, as it may throw: a version whose security does not compile is not applied (NACK).
    if (policy.requestAuthentication.length > 0) this.jwks ??= new JwksRegistry({ logger: d.logger })
    const compiled = compileInboundSecurity(policy, { service: d.service, namespace: d.namespace, jwks: this.jwks, metrics: d.metrics, logger: d.logger, debugAuthz: d.options.debug?.authz === true })
    const security: InboundSecurity = inboundClosed === undefined ? compiled : { ...compiled, closed: inboundClosed }
    this.version = version
    const { snapshot, ready } = compileSnapshot(policy, version, {
      source: d.service,
      runtimes: this.runtimes,
      ctx: {
        metrics: d.metrics,
        logger: d.logger,
        zone: d.options.locality?.zone,
        dnsServers: d.options.dnsServers,
        onEndpointRemoved: (e) => closePool(e),
      },
      stack: d.stack,
      terminal: d.terminal,
      metrics: d.metrics,
      targetMetrics: this.targetMetrics,
      grpcTerminal: d.grpcTerminal,
      accessLog: d.accessLog?.outbound ? d.accessLog : undefined,
    })
    await ready
    d.install(snapshot, security, version)
    this.jwks?.retain(security.authn?.jwksUris ?? [])
    for (const [name, rt] of this.runtimes) {
      if (!policy.services.has(name)) {
        rt.close()
        this.runtimes.delete(name)
      }
    }
    d.metrics.configVersion.set({ source_service: d.service }, version)
    const warnings = policy.issues.filter((i) => i.severity === 'warning')
    // Each warning is logged once, not again with every version that still has it. Under a daemon,
    // an empty route subset is the registry's passing state (instances starting, leaving), said
    // once at the door by `weft apply`; the instance does not repeat it. Nor a policy naming a
    // service with no Service resource: under a daemon such services come from the registry.
    const said = this.warned
    this.warned = new Set(warnings.map(formatIssue))
    const underDaemon = d.underDaemon()
    for (const w of warnings) {
      if (said.has(formatIssue(w)) || (underDaemon && (w.code === 'WEFT_W_SUBSET_EMPTY' || w.code === 'WEFT_W_SERVICE_UNKNOWN'))) continue
      d.logger.warn(formatIssue(w))
    }
    return { version, warnings }
  }

  /**
   * A new certificate or bundle: mTLS pools are replaced, the old ones closing once their
   * requests are done, so connections never outlive the certificate they were made with.
   */
  dropMtlsPools(): void {
    for (const rt of this.runtimes.values()) for (const e of rt.endpoints.list()) if (e.mtls && e.pool) closePool(e, false)
  }

  /**
   * Identities were revoked (RELIABILITY M8): the mTLS pools of the services `revoked` names are
   * closed (idle connections at once, busy ones once their requests finish); their next request
   * asks for a connection again, which the revocation refuses.
   */
  dropMtlsPoolsWhere(revoked: (service: ServiceSettings) => boolean): void {
    for (const rt of this.runtimes.values()) {
      if (!revoked(rt.settings)) continue
      for (const e of rt.endpoints.list()) if (e.mtls && e.pool) closePool(e, false)
    }
  }

  /** Closes discovery, every connection pool and gRPC channel (in-flight requests finish), and the JWKS caches. */
  async close(): Promise<void> {
    const pools: Promise<void>[] = []
    for (const rt of this.runtimes.values()) {
      for (const e of rt.endpoints.list()) {
        if (e.pool) pools.push(e.pool.close().catch(() => {}))
        e.grpcChannel?.close()
        e.grpcChannel = undefined
      }
      rt.close()
    }
    this.runtimes.clear()
    if (this.jwks) pools.push(this.jwks.close().catch(() => {}))
    await Promise.all(pools)
  }
}

/** Closes an endpoint's connections once their requests finish (its next request opens a new pool). */
function closePool(e: Endpoint, grpc = true): void {
  const pool = e.pool
  e.pool = undefined
  if (pool) void pool.close().catch(() => {})
  if (!grpc) return
  e.grpcChannel?.close()
  e.grpcChannel = undefined
}

/** The error a config with errors is refused with (a first config throws it; a reload emits it). */
export function policyError(errors: ConfigIssue[]): WeftError {
  return new WeftError('WEFT_ERR_POLICY_INVALID', `invalid config:\n${errors.map(formatIssue).join('\n')}`, { details: { issues: errors } })
}
