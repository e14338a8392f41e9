// The 'endpoint-stats' client layer: per attempt, counts in-flight requests and feeds the
// time-to-headers into the endpoint's peak-EWMA, and the outcome into outlier detection. An
// upgraded connection (a WebSocket) stays counted in flight until its socket closes, as Envoy
// counts an upgraded stream as an active request: least-request and peak-EWMA then see an
// endpoint holding many long-lived sessions as busy, though each handshake was quick.
import { isUpstreamFailure } from '../resilience/breaker.js'
import type { ClientLayer } from '../stack/call.js'
import { rawHeaderValue } from '../util/headers.js'
import { foreignBackends } from '../stack/target.js'

/** Header a Weft server uses to report its own load (0..1) to callers. */
export const LOAD_HEADER = 'weft-load'

export const endpointStatsLayer: ClientLayer = {
  role: 'endpoint-stats',
  why: 'per attempt, right below the balancer: the latency and outcome it sees are the load signal',
  wrap(next, target) {
    const ownDecay = target.service.loadBalancer.ewmaDecayMs
    const own = target.runtime.outlier
    // A backend that is another Service: its endpoints are ejected by that Service's detector (its
    // set, its settings) and decay by its EWMA setting. Looked up per call only for such a rule.
    const foreign = foreignBackends(target)
    const decays = foreign.length > 0 ? new Map(foreign.map((b) => [b.group, b.owner.loadBalancer.ewmaDecayMs])) : undefined
    return (call, done) => {
      const e = call.endpoint!
      const outlier = decays ? (call.group.set.detector ?? own) : own
      const decay = decays ? (decays.get(call.group) ?? ownDecay) : ownDecay
      e.pending++
      const t0 = call.now()
      next(call, (err, res) => {
        const socket = res?.socket
        if (socket === undefined) e.pending--
        else if (socket.closed || socket.destroyed) e.pending--
        else socket.once('close', () => e.pending--)
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
