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
    return async (call) => {
      if (delay && Math.random() * 100 < delay.percent) {
        await call.sleep(delay.fixedDelayMs)
      }
      if (abort && Math.random() * 100 < abort.percent) {
        return new StaticResponse(abort.httpStatus, 'Fault Injected', 'WEFT_ERR_FAULT_INJECTED',
          `fault injected by route rule ${target.routeLabel} of service ${target.service.name} (${abort.percent}% of calls abort with ${abort.httpStatus})`)
      }
      return next(call)
    }
  },
}
