// Endpoint: one address of a service with the live state every layer reads: load (pending,
// peak-EWMA latency) for the balancer, and consecutive failures / ejection for outlier detection.
import type { Dispatcher } from 'undici'

/** Latency assumed for an endpoint that has answered nothing yet (linkerd2-proxy uses 30 ms). */
const DEFAULT_RTT_MS = 30

export class Endpoint {
  /** The connection pool to this endpoint; created by the transport on first use. */
  pool: Dispatcher | undefined
  /** The gRPC channel to this endpoint (a grpc-js Channel); created by the gRPC transport on first use. */
  grpcChannel: { close(): void } | undefined
  /** Requests sent and not yet answered (headers). */
  pending = 0
  private ewmaMs = DEFAULT_RTT_MS
  private ewmaAt = 0
  /** Load the endpoint reported about itself (0..1, the weft-load response header). */
  reportedLoad = 0
  /** 1 / (1 - load): how much longer a request waits at that utilization (M/M/1 queueing). */
  private loadFactor = 1
  consecutiveFailures = 0
  /** performance.now() until which the endpoint is ejected; 0 when in rotation. */
  ejectedUntil = 0
  /** How many times it has been ejected in a row; multiplies the ejection time. */
  ejections = 0
  lastEjectedAt = 0
  removed = false

  constructor(
    readonly address: string,
    readonly host: string,
    readonly port: number,
    readonly labels: Readonly<Record<string, string>>,
    /** A mesh member serving mTLS: connections to it use this instance's SVID (when it has one). */
    readonly mtls = false,
  ) {}

  get zone(): string | undefined {
    return this.labels.zone
  }

  /** Records a response latency: peaks are taken at once, calm decays in over `decayMs`. */
  observeRtt(rttMs: number, now: number, decayMs: number): void {
    const current = this.decayed(now, decayMs)
    if (rttMs > current) this.ewmaMs = rttMs
    else {
      const w = Math.exp(-(now - this.ewmaAt) / decayMs)
      this.ewmaMs = current * w + rttMs * (1 - w)
    }
    this.ewmaAt = now
  }

  /** The estimate decays toward zero while no sample arrives, so a once-slow endpoint is retried. */
  private decayed(now: number, decayMs: number): number {
    if (this.ewmaAt === 0) return this.ewmaMs
    return this.ewmaMs * Math.exp(-(now - this.ewmaAt) / decayMs)
  }

  /** Records the load a Weft server reported about itself (its event-loop utilization, 0..1). */
  reportLoad(load: number): void {
    this.reportedLoad = load
    this.loadFactor = 1 / (1 - Math.min(load, 0.95))
  }

  /**
   * Peak-EWMA cost: latency estimate × (in-flight + 1), scaled by the load the endpoint reports:
   * an instance whose event loop is 90% busy counts ten times an idle one, 50% busy twice.
   */
  cost(now: number, decayMs: number): number {
    return this.decayed(now, decayMs) * (this.pending + 1) * this.loadFactor
  }
}
