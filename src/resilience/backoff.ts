// Exponential back-off with full jitter (AWS architecture blog; Envoy's retry back-off).

/** Delay before retry number `retry` (1-based): uniform in [0, min(max, base × 2^(retry-1))). */
export function fullJitterDelay(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1))
  return Math.floor(random() * ceiling)
}
