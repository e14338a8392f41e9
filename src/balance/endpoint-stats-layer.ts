// The 'endpoint-stats' client layer: per attempt, counts in-flight requests and feeds the
// time-to-headers into the endpoint's peak-EWMA, and the outcome into outlier detection.
import { isUpstreamFailure } from '../resilience/breaker.js'
import type { ClientLayer } from '../stack/call.js'
import { rawHeaderValue } from '../util/headers.js'

/** Header a Weft server uses to report its own load (0..1) to callers. */
export const LOAD_HEADER = 'weft-load'

export const endpointStatsLayer: ClientLayer = {
  role: 'endpoint-stats',
  why: 'per attempt, right below the balancer: the latency and outcome it sees are the load signal',
  wrap(next, target) {
    const decay = target.service.loadBalancer.ewmaDecayMs
    const outlier = target.runtime.outlier
    return (call, done) => {
      const e = call.endpoint!
      e.pending++
      const t0 = call.now()
      next(call, (err, res) => {
        e.pending--
        const now = performance.now()
        if (res) {
          e.observeRtt(now - t0, now, decay)
          const load = rawHeaderValue(res.rawHeaders, LOAD_HEADER)
          if (load !== undefined) {
            const v = Number(load)
            if (v >= 0 && v <= 1 && v !== e.reportedLoad) e.reportLoad(v)
          }
          if (res.statusCode >= 500) outlier.failure(e, now)
          else outlier.success(e, now)
        } else if (isUpstreamFailure(err)) {
          // A failed attempt counts as slow, so P2C steers away before ejection kicks in.
          e.observeRtt(Math.max(now - t0, 1000), now, decay)
          outlier.failure(e, now)
        }
        done(err, res)
      })
    }
  },
}
