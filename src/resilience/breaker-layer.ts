// The 'circuit' client layer: each attempt runs through the service's breaker; when it is open
// (or a half-open probe is in flight) the attempt fails fast with WEFT_ERR_CIRCUIT_OPEN.
import { WeftError } from '../errors/index.js'
import { callDetails, type ClientLayer } from '../stack/call.js'
import { BrokenCircuitError } from './breaker.js'

export const circuitLayer: ClientLayer = {
  role: 'circuit',
  why: 'below retries (each attempt counts) and above the balancer (an open circuit picks nothing)',
  wrap(next, target) {
    const rt = target.runtime
    if (!target.service.circuitBreaker.enabled) return next
    return (call) => {
      const breaker = rt.breaker
      if (!breaker) return next(call)
      return breaker.execute(() => next(call)).catch((err: unknown) => {
        if (err instanceof BrokenCircuitError) {
          throw new WeftError('WEFT_ERR_CIRCUIT_OPEN',
            `${target.service.name}: circuit ${breaker.state} after ${breaker.consecutiveFailures} consecutive failures; next probe after ${breaker.halfOpenAfterMs}ms`,
            { details: callDetails(call) })
        }
        throw err
      })
    }
  },
}
