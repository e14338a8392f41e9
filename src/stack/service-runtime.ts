// ServiceRuntime: the live state of one destination service that outlives config versions —
// endpoints (with load and ejection state), discovery, breaker, retry budgets, concurrency count.
// A new config version updates it in place; state is reset only where its settings changed.
import type { RetrySettings, ServiceSettings } from '../config/types.js'
import { DnsDiscovery } from '../discovery/dns.js'
import type { Endpoint } from '../discovery/endpoint.js'
import { ServiceEndpoints } from '../discovery/endpoint-set.js'
import { ServiceBreaker } from '../resilience/breaker.js'
import { OutlierDetector } from '../resilience/outlier.js'
import { RetryBudget } from '../resilience/retry-budget.js'
import type { MeshMetrics } from '../telemetry/metrics.js'
import type { Logger } from '../util/logger.js'

export interface RuntimeContext {
  metrics: MeshMetrics
  logger: Logger
  zone?: string
  dnsServers?: string[]
  /** Called when an endpoint leaves the service, to close its pool. */
  onEndpointRemoved(e: Endpoint): void
}

export class ServiceRuntime {
  readonly endpoints: ServiceEndpoints
  readonly outlier: OutlierDetector
  breaker: ServiceBreaker | undefined
  private budgets = new Map<string, RetryBudget>()
  dns: DnsDiscovery | undefined
  /** Calls in flight (for the concurrency limit). */
  inFlight = 0
  /** Settles when discovery has answered once after creation. */
  readonly ready: Promise<void>

  constructor(public settings: ServiceSettings, private readonly ctx: RuntimeContext) {
    this.endpoints = new ServiceEndpoints(settings.name, this.groupOptions(settings), ctx.onEndpointRemoved)
    this.outlier = new OutlierDetector(settings.outlierDetection, this.endpoints, (e, ms) => {
      ctx.metrics.ejections.inc({ source_service: ctx.metrics.source, destination_service: settings.name, endpoint: e.address })
      ctx.logger.warn(`ejected ${e.address} from ${settings.name} for ${Math.round(ms)}ms after consecutive failures`)
    })
    this.endpoints.detector = this.outlier
    this.ready = this.apply(settings, undefined)
  }

  /** Applies new settings; returns a promise that settles once discovery has its first answer. */
  update(settings: ServiceSettings): Promise<void> {
    const prev = this.settings
    this.settings = settings
    return this.apply(settings, prev)
  }

  private apply(s: ServiceSettings, prev: ServiceSettings | undefined): Promise<void> {
    this.endpoints.setOptions(this.groupOptions(s))
    this.outlier.settings = s.outlierDetection
    const cb = s.circuitBreaker
    if (!cb.enabled) this.breaker = undefined
    else if (!this.breaker || this.breaker.consecutiveFailures !== cb.consecutiveFailures || this.breaker.halfOpenAfterMs !== cb.halfOpenAfterMs) {
      const gauge = this.ctx.metrics.circuitState.labels({ source_service: this.ctx.metrics.source, destination_service: s.name })
      gauge.set(0)
      this.breaker = new ServiceBreaker(cb.consecutiveFailures, cb.halfOpenAfterMs, (state) => {
        gauge.set(state === 3 ? 1 : state)
        if (state !== 0) this.ctx.logger.warn(`circuit for ${s.name} is ${['closed', 'open', 'half-open', 'isolated'][state]}`)
      })
    }
    if (s.dns) {
      if (!this.dns || JSON.stringify(this.dns.spec) !== JSON.stringify(s.dns)) {
        this.dns?.stop()
        const dns = new DnsDiscovery(s.name, s.dns, (eps) => this.endpoints.update(eps), this.ctx.logger, this.ctx.dnsServers)
        this.dns = dns
        return dns.start()
      }
      return Promise.resolve()
    }
    this.dns?.stop()
    this.dns = undefined
    if (!prev || prev.dns || JSON.stringify(prev.endpoints) !== JSON.stringify(s.endpoints)) this.endpoints.update(s.endpoints)
    return Promise.resolve()
  }

  /** One budget per distinct budget setting, so a route override gets its own. */
  budget(r: RetrySettings): RetryBudget {
    const key = `${r.budget.ratio}/${r.budget.minPerSecond}/${r.budget.ttlMs}`
    let b = this.budgets.get(key)
    if (!b) this.budgets.set(key, (b = new RetryBudget(r.budget.ratio, r.budget.minPerSecond, r.budget.ttlMs)))
    return b
  }

  close(): void {
    this.dns?.stop()
    this.endpoints.close()
  }

  private groupOptions(s: ServiceSettings) {
    return {
      panicThresholdPercent: s.outlierDetection.panicThresholdPercent,
      locality: { ...s.loadBalancer.locality, zone: this.ctx.zone },
    }
  }
}
