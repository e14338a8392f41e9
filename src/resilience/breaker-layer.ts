// The 'circuit' client layer: each call runs through the service's breaker; when it is open (or
// a half-open probe is in flight) the call fails fast with WEFT_ERR_CIRCUIT_OPEN and spends no
// retries. It sits above the retry layer on purpose: the breaker judges the service by what
// callers get after retries. One bad endpoint among good ones is outlier detection's job (per
// host, like Finagle's failure accrual and Envoy's outlier detection); counted per attempt at the
// service level, a single dead endpoint would open the whole service's circuit within a burst.
import { WeftError } from '../errors/index.js'
import { callDetails, type ClientLayer } from '../stack/call.js'
import { runHandler } from '../stack/layer.js'
import { BrokenCircuitError } from './breaker.js'

export const circuitLayer: ClientLayer = {
  role: 'circuit',
  why: 'above retries: judges the service by outcomes after retries, so one dead endpoint never opens it',
  wrap(next, target) {
    const rt = target.runtime
    if (!target.service.circuitBreaker.enabled) return next
    return (call, done) => {
      const breaker = rt.breaker
      if (!breaker) return next(call, done)
      if (breaker.closed) {
        // Closed: run the call directly and report its outcome to the breaker at response headers
        // (a 5xx is known then); cockatiel's execute is only used when the circuit is not closed.
        return next(call, (err, res) => {
          breaker.record(res, err)
          done(err, res)
        })
      }
      breaker.execute(() => runHandler(next, call)).then(
        (res) => done(null, res),
        (err: Error) => {
          if (err instanceof BrokenCircuitError) {
            return done(new WeftError('WEFT_ERR_CIRCUIT_OPEN',
              `${target.service.name}: circuit ${breaker.state} after ${breaker.consecutiveFailures} consecutive failures; next probe after ${breaker.halfOpenAfterMs}ms`,
              { details: callDetails(call) }))
          }
          done(err)
        },
      )
    }
  },
}
