// Defaults for every Service field, written next to their reasons. A Service with only a name
// and endpoints gets all of these.

export const DEFAULTS = {
  /** Envoy's route timeout default; long enough for slow calls, short enough to free resources. */
  timeoutMs: 15_000,
  retries: {
    /** Retries after the first try (Istio's meaning of attempts): 3 tries at most (gRFC A6, Envoy). */
    attempts: 2,
    retryOn: ['connect-failure', 'reset', '502', '503', '504'],
    /** Linkerd/Finagle budget: retries ≤ 20 % of requests + 10/s, deposits expire after 10 s. */
    budget: { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 },
    /** Envoy's retry back-off: 25 ms base, capped at 10× base; full jitter. */
    backoff: { baseMs: 25, maxMs: 250 },
  },
  /** cockatiel ConsecutiveBreaker; half-open lets one probe through. */
  circuitBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 10_000 },
  /** Envoy outlier-detection defaults; 50 % max ejection and panic threshold (Envoy's panic default). */
  outlierDetection: { consecutive5xx: 5, baseEjectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectionPercent: 50, panicThresholdPercent: 50 },
  /** Envoy's max_requests default for a cluster. */
  concurrencyLimit: 1024,
  /** linkerd2-proxy's peak-EWMA decay. */
  ewmaDecayMs: 10_000,
  /** Keep traffic in the caller's zone while at least this share of its endpoints is healthy. */
  localityMinHealthyPercent: 70,
  /** DNS: re-resolve at least this often, whatever the TTL (grpc-node #2265). */
  dnsRefreshMs: 30_000,
  /** Request bodies streamed past this many bytes cannot be replayed, so are never retried. */
  replayBufferBytes: 64 * 1024,
} as const
