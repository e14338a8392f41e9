// Weighted backend choice (canary splits): one draw per call; retries stay in the chosen subset.
import type { BackendTarget } from '../stack/target.js'

import type { EndpointGroup } from '../discovery/endpoint-set.js'

/** The per-call choice of a rule's backend group, built once per rule (no draw for one backend). */
export function makeBackendPicker(backends: readonly BackendTarget[]): () => EndpointGroup {
  if (backends.length === 1) {
    const only = backends[0]!.group
    return () => only
  }
  const total = backends.reduce((n, b) => n + b.weight, 0)
  return () => {
    let r = Math.random() * total
    for (const b of backends) {
      r -= b.weight
      if (r < 0) return b.group
    }
    return backends[backends.length - 1]!.group
  }
}
