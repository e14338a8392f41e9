// Passive outlier detection (Envoy's consecutive-5xx): an endpoint with N failures in a row is
// ejected for base × (times ejected) up to a max, never past maxEjectionPercent of the service.
import type { ServiceSettings } from '../config/types.js'
import type { Endpoint } from '../discovery/endpoint.js'
import type { ServiceEndpoints } from '../discovery/endpoint-set.js'

export class OutlierDetector {
  constructor(
    public settings: ServiceSettings['outlierDetection'],
    private readonly set: ServiceEndpoints,
    private readonly onEject: (e: Endpoint, ms: number) => void,
  ) {}

  success(e: Endpoint, now: number): void {
    e.consecutiveFailures = 0
    // A long healthy stretch forgives earlier ejections, so the next one starts short again.
    if (e.ejections > 0 && now - e.lastEjectedAt > this.settings.maxEjectionTimeMs) e.ejections = 0
  }

  failure(e: Endpoint, now: number): void {
    if (!this.settings.enabled || e.removed) return
    e.consecutiveFailures++
    if (e.consecutiveFailures < this.settings.consecutive5xx || e.ejectedUntil > now) return
    const allowed = Math.floor((this.set.size * this.settings.maxEjectionPercent) / 100)
    if (this.set.ejectedCount(now) >= allowed) return
    e.ejections++
    const ms = Math.min(this.settings.baseEjectionTimeMs * e.ejections, Math.max(this.settings.maxEjectionTimeMs, this.settings.baseEjectionTimeMs))
    e.ejectedUntil = now + ms
    e.lastEjectedAt = now
    e.consecutiveFailures = 0
    this.set.markEjected(e)
    this.onEject(e, ms)
  }
}
