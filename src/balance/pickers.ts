// Endpoint pickers: round-robin, power-of-two-choices over peak-EWMA cost (default),
// least-request (P2C over in-flight counts, as Envoy does), and ring-hash on a header.
// Each works on the group's current candidates and avoids the endpoint that just failed.
import type { LbPolicy, ServiceSettings } from '../config/types.js'
import type { Endpoint } from '../discovery/endpoint.js'
import type { EndpointGroup } from '../discovery/endpoint-set.js'
import type { HeaderRecord } from '../util/headers.js'
import { headerValue } from '../util/headers.js'
import { buildRing, ringLookup } from './ring-hash.js'

export type Picker = (group: EndpointGroup, now: number, headers: HeaderRecord, avoid: Endpoint | undefined) => Endpoint | undefined

function randomIndex(n: number): number {
  return (Math.random() * n) | 0
}

/** Two distinct random candidates; on a retry the endpoint that just failed is left out. */
function twoChoices(c: Endpoint[], avoid: Endpoint | undefined): [Endpoint, Endpoint] {
  const skip = avoid === undefined || c.length <= 2 ? -1 : c.indexOf(avoid)
  const n = skip < 0 ? c.length : c.length - 1
  const i = randomIndex(n)
  let j = randomIndex(n - 1)
  if (j >= i) j++
  const at = (k: number): Endpoint => c[skip >= 0 && k >= skip ? k + 1 : k]!
  return [at(i), at(j)]
}

export function makePicker(settings: ServiceSettings['loadBalancer']): Picker {
  const policy: LbPolicy = settings.policy
  const decay = settings.ewmaDecayMs
  switch (policy) {
    case 'round-robin':
      return (group, now, _h, avoid) => {
        const c = group.current(now)
        if (c.length === 0) return undefined
        let e = c[group.rr++ % c.length]!
        if (e === avoid && c.length > 1) e = c[group.rr++ % c.length]!
        return e
      }
    case 'least-request':
      return (group, now, _h, avoid) => {
        const c = group.current(now)
        if (c.length <= 1) return c[0]
        if (c.length === 2) return c[0] === avoid ? c[1] : c[1] === avoid ? c[0] : c[0]!.pending <= c[1]!.pending ? c[0] : c[1]
        const [a, b] = twoChoices(c, avoid)
        return a.pending <= b.pending ? a : b
      }
    case 'ring-hash': {
      const header = settings.hashOn?.header ?? ''
      return (group, now, headers, avoid) => {
        const c = group.current(now)
        if (c.length === 0) return undefined
        const key = headerValue(headers, header)
        if (key === undefined) return c[randomIndex(c.length)]
        group.ring ??= buildRing(c)
        const e = ringLookup(group.ring, key)
        // A failed sticky endpoint is left for this retry only; the key stays on it otherwise.
        if (e === avoid && c.length > 1) return ringLookup(group.ring, `${key}#retry`) ?? e
        return e
      }
    }
    case 'p2c-ewma':
    default:
      return (group, now, _h, avoid) => {
        const c = group.current(now)
        if (c.length <= 1) return c[0]
        if (c.length === 2) {
          if (c[0] === avoid) return c[1]
          if (c[1] === avoid) return c[0]
          return c[0]!.cost(now, decay) <= c[1]!.cost(now, decay) ? c[0] : c[1]
        }
        const [a, b] = twoChoices(c, avoid)
        return a.cost(now, decay) <= b.cost(now, decay) ? a : b
      }
  }
}
