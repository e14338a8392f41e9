// Compiles a validated MeshPolicy into a Snapshot: per service, the ordered rule table with one
// prebuilt stack per (service, rule). The hot path only reads a Snapshot; nothing is parsed or
// built per request.
import type { MeshPolicy, RuleSettings, ServiceSettings } from './config/types.js'
import type { ClientStack } from './client-stack.js'
import { compileRule, type RequestView, type RulePredicate } from './routing/match.js'
import { makeBackendPicker } from './routing/split.js'
import type { ClientHandler } from './stack/call.js'
import { ServiceRuntime, type RuntimeContext } from './stack/service-runtime.js'
import type { MirrorTarget, RouteTarget } from './stack/target.js'
import type { MeshMetrics, TargetMetrics } from './telemetry/metrics.js'
import { mirrorStackOf } from './routing/mirror-layer.js'
import type { AccessLog } from './telemetry/access-log.js'

export interface CompiledRule {
  readonly label: string
  readonly routeName: string | undefined
  readonly predicate: RulePredicate
  readonly target: RouteTarget
  readonly handler: ClientHandler
  /** The rule's stack for gRPC calls, built on first use (once per snapshot). */
  grpcHandler(): ClientHandler
}

export interface CompiledService {
  readonly settings: ServiceSettings
  /** "http://<name>": a request with this origin needs no Host header (the pool sends it). */
  readonly plainOrigin: string
  readonly runtime: ServiceRuntime
  readonly rules: readonly CompiledRule[]
  /** Used when no rule matches (or the service has no Route): all endpoints, service settings. */
  readonly fallback: CompiledRule
}

export class Snapshot {
  constructor(
    readonly version: number,
    readonly policy: MeshPolicy,
    private readonly byHost: Map<string, CompiledService>,
  ) {}

  /** The service a URL host names ("payments" or "payments.<namespace>"), if the mesh knows it. */
  lookup(host: string): CompiledService | undefined {
    return this.byHost.get(host)
  }

  route(svc: CompiledService, req: RequestView): CompiledRule {
    for (const rule of svc.rules) if (rule.predicate(req)) return rule
    return svc.fallback
  }
}

export interface CompileDeps {
  source: string
  runtimes: Map<string, ServiceRuntime>
  ctx: RuntimeContext
  stack: ClientStack
  terminal: ClientHandler
  metrics: MeshMetrics
  targetMetrics: Map<string, TargetMetrics>
  /** The gRPC terminal handler; asked for only when a gRPC call uses a rule. */
  grpcTerminal?: () => ClientHandler
  /** Outbound access log, when on. */
  accessLog?: AccessLog
}

const DEFAULT_RULE = (name: string): RuleSettings => ({ name, index: 0, matches: [], backends: [{ subset: {}, weight: 1 }] })

/** Builds the snapshot; `ready` settles when every service's discovery has answered once. */
export function compileSnapshot(policy: MeshPolicy, version: number, deps: CompileDeps): { snapshot: Snapshot; ready: Promise<unknown> } {
  const byHost = new Map<string, CompiledService>()
  const waits: Promise<void>[] = []
  // Runtimes first: a rule's mirror may send to a service compiled after the route's own.
  for (const settings of policy.services.values()) {
    const runtime = deps.runtimes.get(settings.name)
    if (runtime) waits.push(runtime.update(settings))
    else {
      const created = new ServiceRuntime(settings, deps.ctx)
      deps.runtimes.set(settings.name, created)
      waits.push(created.ready)
    }
  }
  const metricsFor = (service: string, label: string): TargetMetrics => {
    const key = `${service}\u0000${label}`
    let metrics = deps.targetMetrics.get(key)
    if (!metrics) deps.targetMetrics.set(key, (metrics = deps.metrics.forTarget(service, label)))
    return metrics
  }
  /** The target of `rule` as a rule of `settings`' service (the mirror's too: a rule of its own). */
  const targetFor = (settings: ServiceSettings, rt: ServiceRuntime, rule: RuleSettings): RouteTarget => {
    const backends = rule.backends.map((b) => {
      const owner = (b.service !== undefined ? deps.runtimes.get(b.service) : undefined) ?? rt
      return { group: owner.endpoints.group(b.subset), weight: b.weight, subset: b.subset, owner: owner.settings }
    })
    return {
      source: deps.source,
      service: settings,
      runtime: rt,
      rule,
      routeLabel: rule.name,
      timeoutMs: rule.timeoutMs ?? settings.timeoutMs,
      retries: rule.retries ?? settings.retries,
      backends,
      pickGroup: makeBackendPicker(backends),
      configVersion: version,
      metrics: metricsFor(settings.name, rule.name),
      protocol: 'http',
      mirror: mirrorOf(rule),
      accessLog: deps.accessLog,
    }
  }
  let mirrorStack: ClientStack | undefined
  /**
   * A rule's mirror: a rule "<rule>.mirror" of the mirror service, with the rule's timeout, no
   * retries, and a stack without the service's breaker and limit (routing/mirror-layer.ts).
   */
  const mirrorOf = (rule: RuleSettings): MirrorTarget | undefined => {
    const m = rule.mirror
    const settings = m && policy.services.get(m.service)
    const runtime = m && deps.runtimes.get(m.service)
    if (!m || !settings || !runtime) return undefined
    const target = targetFor(settings, runtime, {
      name: `${rule.name}.mirror`,
      index: rule.index,
      matches: [],
      backends: [{ subset: m.subset, weight: 1 }],
      timeoutMs: rule.timeoutMs,
      retries: { ...settings.retries, attempts: 0 },
    })
    mirrorStack ??= mirrorStackOf(deps.stack)
    return { percent: m.percent, target, handler: mirrorStack.build(deps.terminal, target) }
  }
  for (const settings of policy.services.values()) {
    const rt = deps.runtimes.get(settings.name)!
    const build = (rule: RuleSettings, routeName: string | undefined): CompiledRule => {
      const label = rule.name
      const target = targetFor(settings, rt, rule)
      let grpc: ClientHandler | undefined
      return {
        label,
        routeName,
        predicate: compileRule(rule.matches),
        target,
        handler: deps.stack.build(deps.terminal, target),
        grpcHandler() {
          if (grpc) return grpc
          if (!deps.grpcTerminal) throw new Error('weft: no gRPC transport')
          const rpcMetrics = deps.metrics.forRpcTarget(settings.name)
          return (grpc = deps.stack.build(deps.grpcTerminal(), { ...target, protocol: 'grpc', rpcMetrics }))
        },
      }
    }
    const rules = policy.routes
      .filter((r) => r.service === settings.name)
      .sort((a, b) => a.order - b.order)
      .flatMap((r) => r.rules.map((rule) => build(rule, r.name)))
    const compiled: CompiledService = { settings, plainOrigin: `http://${settings.name}`, runtime: rt, rules, fallback: build(DEFAULT_RULE('default'), undefined) }
    byHost.set(settings.name, compiled)
    byHost.set(`${settings.name}.${settings.namespace}`, compiled)
  }
  return { snapshot: new Snapshot(version, policy, byHost), ready: Promise.allSettled(waits) }
}
