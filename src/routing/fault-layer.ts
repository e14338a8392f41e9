// The 'fault' client layer: a Route rule's fault injection — a fixed delay and/or an abort with
// an HTTP status, each for a percentage of calls. Sits below the deadline (a delay counts against
// it) and above retries (an injected abort is the answer, as in Envoy, not an upstream failure).
import { StaticResponse } from '../stack/static-response.js'
import type { ClientLayer } from '../stack/call.js'

export const faultLayer: ClientLayer = {
  role: 'fault',
  why: 'below the deadline so injected delays count against it; above retries so aborts are final',
  wrap(next, target) {
    const fault = target.rule.fault
    if (!fault) return next
    const { delay, abort } = fault
    const maybeAbort = (call: Parameters<typeof next>[0], done: Parameters<typeof next>[1]): void => {
      if (abort && Math.random() * 100 < abort.percent) {
        return done(null, new StaticResponse(abort.httpStatus, 'Fault Injected', 'WEFT_ERR_FAULT_INJECTED',
          `fault injected by route rule ${target.routeLabel} of service ${target.service.name} (${abort.percent}% of calls abort with ${abort.httpStatus})`))
      }
      next(call, done)
    }
    return (call, done) => {
      if (delay && Math.random() * 100 < delay.percent) {
        return call.sleep(delay.fixedDelayMs, (err) => (err ? done(err) : maybeAbort(call, done)))
      }
      maybeAbort(call, done)
    }
  },
}
