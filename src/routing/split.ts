// Weighted backend choice (canary splits): one draw per call; retries stay in the chosen subset.
import type { BackendTarget } from '../stack/target.js'

export function pickBackend(backends: readonly BackendTarget[], total: number, random: number = Math.random()): BackendTarget {
  if (backends.length === 1) return backends[0]!
  let r = random * total
  for (const b of backends) {
    r -= b.weight
    if (r < 0) return b
  }
  return backends[backends.length - 1]!
}
