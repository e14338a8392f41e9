// The 'limit' client layer: a per-service cap on calls in flight that fails fast with
// WEFT_ERR_OVERLOADED instead of queueing (Envoy's max_requests). A call holds its slot until
// its response body ends.
import { WeftError } from '../errors/index.js'
import { callDetails, type ClientLayer, type DoneListener } from '../stack/call.js'

export const limitLayer: ClientLayer = {
  role: 'limit',
  why: 'before retries and the balancer so a saturated service costs callers nothing',
  wrap(next, target) {
    const rt = target.runtime
    const limit = target.service.concurrencyLimit
    const release: DoneListener = { callDone: () => void rt.inFlight-- }
    return (call, done) => {
      if (rt.inFlight >= limit) {
        return done(new WeftError('WEFT_ERR_OVERLOADED', `${target.service.name}: ${rt.inFlight} calls in flight reached concurrencyLimit ${limit}; failing fast`, {
          details: callDetails(call, { concurrencyLimit: limit, inFlight: rt.inFlight }),
        }))
      }
      rt.inFlight++
      call.onDone(release)
      next(call, done)
    }
  },
}
