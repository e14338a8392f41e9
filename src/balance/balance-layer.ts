// The 'balance' client layer: picks the endpoint for this attempt from the backend subset chosen
// for the call, with the service's policy (P2C peak-EWMA by default), leaving out ejected
// endpoints (all of them in panic mode) and preferring the caller's zone while it is healthy.
import { WeftError } from '../errors/index.js'
import { callDetails, type ClientLayer } from '../stack/call.js'
import { makePicker } from './pickers.js'
import { foreignBackends } from '../stack/target.js'

export const balanceLayer: ClientLayer = {
  role: 'balance',
  why: 'below retries so each attempt picks again (and avoids the endpoint that just failed)',
  wrap(next, target) {
    const rt = target.runtime
    const own = makePicker(target.service.loadBalancer)
    // A backend that is another Service is balanced by that Service's loadBalancer settings (as
    // Istio's DestinationRule of the destination host): one picker per group, chosen per call.
    const foreign = foreignBackends(target)
    const pickers = foreign.length > 0 ? new Map(foreign.map((b) => [b.group, makePicker(b.owner.loadBalancer)])) : undefined
    return (call, done) => {
      const group = call.group
      const now = call.now()
      const pick = pickers?.get(group) ?? own
      const e = pick(group, now, call.headers, call.avoid)
      if (e === undefined) {
        // The group's owner: the route's service, or the other Service a backend names.
        const owner = group.set
        const subset = Object.keys(group.selector).length ? ` subset ${JSON.stringify(group.selector)}` : ''
        const via = owner.service === target.service.name ? '' : ` (backend service ${owner.service})`
        const why = group.members.length === 0
          ? owner.size === 0 ? 'the service has no endpoints (check endpoints or discovery)' : `no endpoint matches${subset}`
          : 'every endpoint is ejected'
        return done(new WeftError('WEFT_ERR_NO_ENDPOINTS', `${target.service.name}${via}${subset}: no endpoint to send to: ${why}`, {
          details: callDetails(call, { subset: group.selector, members: group.members.length, ejected: owner.ejectedCount(now), dnsLookups: owner === rt.endpoints ? rt.dns?.lookups : undefined }),
        }))
      }
      call.useEndpoint(e)
      next(call, done)
    }
  },
}
