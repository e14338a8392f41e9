// The 'balance' client layer: picks the endpoint for this attempt from the backend subset chosen
// for the call, with the service's policy (P2C peak-EWMA by default), leaving out ejected
// endpoints (all of them in panic mode) and preferring the caller's zone while it is healthy.
import { WeftError } from '../errors/index.js'
import { callDetails, type ClientLayer } from '../stack/call.js'
import { makePicker } from './pickers.js'

export const balanceLayer: ClientLayer = {
  role: 'balance',
  why: 'below retries so each attempt picks again (and avoids the endpoint that just failed)',
  wrap(next, target) {
    const pick = makePicker(target.service.loadBalancer)
    const rt = target.runtime
    return (call, done) => {
      const group = call.group
      const now = call.now()
      const e = pick(group, now, call.headers, call.avoid)
      if (e === undefined) {
        const subset = Object.keys(group.selector).length ? ` subset ${JSON.stringify(group.selector)}` : ''
        const why = group.members.length === 0
          ? rt.endpoints.size === 0 ? 'the service has no endpoints (check endpoints or discovery)' : `no endpoint matches${subset}`
          : 'every endpoint is ejected'
        return done(new WeftError('WEFT_ERR_NO_ENDPOINTS', `${target.service.name}${subset}: no endpoint to send to: ${why}`, {
          details: callDetails(call, { subset: group.selector, members: group.members.length, ejected: rt.endpoints.ejectedCount(now), dnsLookups: rt.dns?.lookups }),
        }))
      }
      call.useEndpoint(e)
      next(call, done)
    }
  },
}
